// The limits the WebSocket hello reports (WS_PROTOCOL.md, "Limits"): the
// settings the table marks for it, each under its config key, so a client
// reads the same name in the hello, in a limit_exceeded error and in the
// reference.
#pragma once

#include <boost/json/object.hpp>

#include "daemon/config/daemon_config.hpp"

namespace sandboxd::config {

boost::json::object hello_limits(const DaemonConfig& config);

}  // namespace sandboxd::config
