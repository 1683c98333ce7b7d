// `sandboxd-host net-serve`: one sandbox's network stack without a VM,
// listening on a unix socket for whoever plays QEMU's side of the link
// (stream framing: a 4-byte big-endian length before each Ethernet frame).
// For frame-level tests with crafted or hostile traffic, and for poking at
// the stack by hand. Serves one connection at a time, each with a fresh
// stack; prints the counters on stderr after each connection when asked,
// and on SIGUSR1; stops on SIGTERM or SIGINT.
#pragma once

#include <string>

#include "daemon/cli/network_options.hpp"

namespace sandboxd::cli {

struct NetServeOptions {
  std::string socket_path;
  NetworkOptions network;
};

int net_serve_command(const NetServeOptions& options);

}  // namespace sandboxd::cli
