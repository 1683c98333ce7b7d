// Per-connection limits of the control plane. Part of the daemon's
// configuration (config/daemon_config.hpp), where each one's key, range and
// doc line are.
#pragma once

#include <cstddef>

namespace sandboxd::api {

struct ConnectionConfig {
  std::size_t max_frame_bytes = 1u << 20;  // the largest message a client may send
  unsigned max_pending_requests = 64;
  friend bool operator==(const ConnectionConfig&, const ConnectionConfig&) = default;
};

}  // namespace sandboxd::api
