// `sandboxd-host serve`: the daemon. Reads the config file, lets flags
// override it, reconciles what a previous run left behind, warms the pool and
// serves the WebSocket control plane until SIGTERM or SIGINT, then ends every
// sandbox with an event and leaves nothing running.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "daemon/config/setting_flags.hpp"

namespace sandboxd::cli {

struct ServeOptions {
  std::string config_file;
  std::optional<std::string> extra_tokens_file;
  config::SettingFlags settings;  // the setting table's flags, over the config file's values
};

void add_serve_options(CLI::App& command, ServeOptions& options);
int serve_command(const ServeOptions& options);

}  // namespace sandboxd::cli
