// `sandboxd-host run`: boot a VM, run one command in it with the caller's
// stdin, stream its stdout and stderr to the terminal, exit with its status.
#pragma once

#include <string>
#include <vector>

#include "daemon/cli/network_options.hpp"
#include "daemon/vm/accelerator.hpp"

namespace sandboxd::cli {

struct RunOptions {
  std::string image = "default";
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  std::string accelerator = "auto";
  std::vector<std::string> env;  // NAME=value, added to the defaults
  std::string cwd = "/";
  std::string user;  // the guest account; empty: root
  std::vector<std::string> command;
  bool print_timing = false;
  // The guest's network: stack (the daemon's own user-space stack), slirp
  // (QEMU's user network, kept as a comparison peer) or none.
  std::string network = "stack";
  NetworkOptions net;  // MTU, egress, host aliases, counters
};

// Exit status of the command: its own code, 128+N when killed by signal N,
// 126/127 when it could not be started, 125 when sandboxd itself failed.
int run_command(const RunOptions& options);

inline constexpr int kSandboxFailure = 125;

}  // namespace sandboxd::cli
