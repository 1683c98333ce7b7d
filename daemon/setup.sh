#!/usr/bin/env bash
# Installs what sandboxd needs on Debian 12 (as root) and builds it, guest
# image included, into build/. Safe to run again: installed packages, an
# unchanged build and cached images (/var/cache/sandboxd) are reused.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

packages=(
  # build
  meson ninja-build pkg-config g++ python3 clang libclang-rt-14-dev
  libboost1.81-dev libboost-json1.81-dev libssl-dev libfuse3-dev libspdlog-dev libcli11-dev catch2
  # run: QEMU, and depmod for the image builder
  qemu-system-x86 kmod ca-certificates
  # mke2fs: the ext4 disks of disk_backing "file"
  e2fsprogs
  # the layered Debian images: their systems and read-only file systems
  mmdebstrap squashfs-tools erofs-utils
  # tests: frames crafted with scapy (run by Debian's own python3)
  python3-scapy
  # tests: WebSocket clients (Debian's python3-websocket)
  python3-websocket
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

werror=false
[[ "${CI:-}" == "true" ]] && werror=true
if [[ ! -f build/build.ninja ]]; then
  meson setup build -Dwerror=$werror >/dev/null
fi
meson compile -C build
