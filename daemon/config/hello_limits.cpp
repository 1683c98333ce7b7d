#include "daemon/config/hello_limits.hpp"

#include "daemon/config/setting_table.hpp"

namespace sandboxd::config {

boost::json::object hello_limits(const DaemonConfig& config) {
  boost::json::object limits;
  for (const auto& setting : setting_table())
    if (setting.in_hello) limits[setting.key] = *setting.number(config);
  // The old name of max_sandboxes_per_token, from before the hello named its
  // limits by their config keys; kept for the clients written against it.
  limits["max_sandboxes"] = limits.at("max_sandboxes_per_token");
  return limits;
}

}  // namespace sandboxd::config
