// `sandboxd-host serve`: the daemon. Reads the config file, lets flags
// override it, reconciles what a previous run left behind, warms the pool and
// serves the WebSocket control plane until SIGTERM or SIGINT, then ends every
// sandbox with an event and leaves nothing running.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::cli {

struct ServeOptions {
  std::string config_file;
  std::optional<std::string> listen;
  std::optional<std::string> socket_path;
  std::optional<std::string> runtime_dir;
  std::optional<std::string> token_file;
  std::optional<std::string> extra_tokens_file;
  std::optional<unsigned> pool_size;
  std::optional<std::string> network;
  std::optional<std::string> egress;
  std::optional<std::string> accelerator;
  std::optional<std::string> image;
  std::optional<std::string> log_level;
  std::vector<std::string> allowed_origins;
};

void add_serve_options(CLI::App& command, ServeOptions& options);
int serve_command(const ServeOptions& options);

}  // namespace sandboxd::cli
