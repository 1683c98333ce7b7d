// Which daemon to talk to and with which token, from (highest first) command
// line flags, the environment, the client config file and the defaults.
//
// Pure: the environment and the file system come in as functions, so the
// precedence rules are unit-tested without touching the real ones.
//
// Config file: lines "key = value"; blank lines and lines whose first
// non-blank character is '#' are ignored (a '#' later in a line is part of the
// value: tokens may hold one). Keys: url, token, token_file. A relative
// token_file is relative to the config file's directory; "~/" is the home.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::ctl {

struct ConfigFlags {
  std::optional<std::string> url;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  std::optional<std::string> config_file;
};

struct ReadResult {
  int error = 0;  // an errno value; 0 when `text` holds the file
  std::string text;
};
using ReadFile = std::function<ReadResult(const std::string& path)>;
using GetEnv = std::function<std::optional<std::string>(const std::string& name)>;

struct ClientConfig {
  std::string url;
  std::string token;         // empty: none found, connect without one
  std::string token_source;  // where the token came from, for messages
};

// The token files a daemon writes by default: the system one (root's
// daemon), then the user's state directory (a daemon run by this user).
std::vector<std::string> default_token_files(const GetEnv& env);
// $XDG_CONFIG_HOME/sandboxd/client.conf, else ~/.config/sandboxd/client.conf;
// empty when neither variable is set.
std::string default_config_file(const GetEnv& env);

// Fails on an unreadable file that was named explicitly (flag, variable or
// config key), a config file line that does not parse, or an empty token.
// Missing default files are skipped.
Expected<ClientConfig, std::string> resolve_client_config(const ConfigFlags& flags, const GetEnv& env,
                                                          const ReadFile& read_file);

// The real environment and file system.
GetEnv process_env();
ReadFile file_system_reader();

}  // namespace sandboxd::ctl
