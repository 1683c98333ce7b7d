// The warm pool's settings (vm_pool.hpp). Part of the daemon's configuration
// (config/daemon_config.hpp), where each one's key, range and doc line are.
#pragma once

namespace sandboxd::vm {

struct PoolConfig {
  unsigned warm_per_shape = 2;
  // Background refills booting at once (boots under TCG are CPU-bound).
  unsigned max_parallel_refills = 2;
  friend bool operator==(const PoolConfig&, const PoolConfig&) = default;
};

}  // namespace sandboxd::vm
