// The sandbox service's settings: defaults for what a create leaves out, and
// the limits no client may exceed. Part of the daemon's configuration
// (config/daemon_config.hpp), where each one's key, range and doc line are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/net/egress/egress_policy.hpp"
#include "policy/network_policy.hpp"

namespace sandboxd::session {

struct ServiceConfig {
  std::string default_image = "default";
  unsigned default_cpus = 1;
  unsigned default_memory_mib = 256;
  unsigned max_cpus = 4;
  unsigned max_memory_mib = 4096;
  unsigned max_sandboxes_per_token = 16;
  // A writable layer in a file (disk_backing "file"): its size unless the
  // create says, and the most it may ask for.
  unsigned default_file_disk_mib = 4096;
  unsigned max_disk_mib = 65536;
  std::uint32_t default_lifetime_s = 3600;     // 0: none
  std::uint32_t default_idle_timeout_s = 600;  // 0: none
  net::EgressMode default_egress = net::EgressMode::kDenyAll;
  // Rules every sandbox gets unless it asks otherwise; when set, in place of
  // default_egress (the config's network_policy file).
  std::optional<policy::NetworkPolicy> default_network;
  std::uint64_t exec_log_bytes = 16u << 20;
  std::uint32_t exec_retention_s = 600;
  unsigned max_retained_execs = 1000;
  // Host directories a `host` mount may serve (the directory itself or any
  // beneath it); empty: no host mounts.
  std::vector<std::filesystem::path> allowed_host_roots;

  friend bool operator==(const ServiceConfig&, const ServiceConfig&) = default;
};

}  // namespace sandboxd::session
