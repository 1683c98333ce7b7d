#!/usr/bin/env bash
# Sets everything up (see setup.sh) and runs sandboxd-host with the given
# arguments, e.g.:  bash daemon/run.sh run -- echo hello
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/daemon/setup.sh" >&2
exec "$root/build/daemon/sandboxd-host" "$@"
