// How the daemon's machines are made, as configured: the accelerator asked
// for (accelerator.hpp decides what it becomes on this host) and the guest's
// network (network_mode.hpp). Part of the daemon's configuration
// (config/daemon_config.hpp), where each one's key, range and doc line are.
#pragma once

#include "daemon/vm/accelerator.hpp"
#include "daemon/vm/network_mode.hpp"

namespace sandboxd::vm {

struct MachineConfig {
  AcceleratorRequest accelerator;  // auto
  NetworkMode network = NetworkMode::kStack;
  friend bool operator==(const MachineConfig&, const MachineConfig&) = default;
};

}  // namespace sandboxd::vm
