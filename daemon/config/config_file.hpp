// The daemon's config file: its `key = value` syntax, read into a
// DaemonConfig through the setting table. The syntax and every key are
// described for users in daemon/config/README.md.
//
// One setting a line, blanks around key and value ignored; blank lines and
// `#` comments ignored, a `#` after a value only when a blank comes before
// it; double quotes keep outer blanks or a ` #`, with \" and \\ the only
// escapes; no control characters in values. A key may be set once. An
// unknown key, a repeated key or a value the key's kind refuses is an error
// naming the line, so a misspelt key never silently leaves a default in
// place. After the last line, each sandbox default is checked against its
// maximum, naming the line of whichever of the two the text set.
//
// A file that sets `token` must be private to its owner: a token others can
// read is a token they know. No error ever repeats the token.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "daemon/config/daemon_config.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::config {

inline constexpr std::size_t kMaxConfigFileBytes = 1u << 20;

// The settings of `text` applied over `base`. Errors read
// "line 7: unknown key 'pol_size'" or "line 3: pool_size: expected an integer 0..64".
Expected<DaemonConfig, std::string> parse_daemon_config(std::string_view text, DaemonConfig base = {});

// Reads `file` (a regular file of at most kMaxConfigFileBytes) and parses it
// over `base`. Errors start with the file's path.
Expected<DaemonConfig, std::string> load_daemon_config(const std::filesystem::path& file, DaemonConfig base = {});

}  // namespace sandboxd::config
