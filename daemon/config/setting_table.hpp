// The table of the daemon's settings: one entry per key, and everything else
// about settings read off it.
//
// An entry names its key, the DaemonConfig member it sets, the kind of value
// it takes (setting_values.hpp: the parser used for the file and the flag
// alike, and what it accepts), a one-line doc, and where else it appears:
// its command-line flag of `serve`, if it has one, and whether the WebSocket
// hello reports it among its limits. Its default is not in the entry: it is
// read off a default-constructed DaemonConfig, whose parts declare them.
//
// The table drives the config file parser (config_file.hpp), the flags of
// `serve` (setting_flags.hpp), the hello's limits (hello_limits.hpp) and the
// reference of keys in daemon/config/README.md (reference_table.hpp).
//
// Adding a setting: a member with its default in the component's settings
// struct, an entry in setting_table.cpp, and the reference regenerated: the
// config unit test that compares it with the table writes the table's version
// of daemon/config/README.md into the build tree, to be copied over it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/daemon_config.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::config {

struct Setting {
  std::string_view key;
  std::string_view doc;
  std::string accepts;  // what the value may be, in a few words: "0..64", "auto, kvm or tcg"
  // The flag of `serve` that sets it ("--pool-size"); empty: the file only.
  std::string_view flag;
  // The flag may be given again; each use adds to a comma-separated list.
  bool flag_repeats = false;
  // Reported in the hello's limits, under its key.
  bool in_hello = false;

  // Parses `text` into the member, or says why it cannot ("expected an
  // integer 0..64"), leaving the config as it was.
  std::function<Expected<void, std::string>(DaemonConfig&, std::string_view text)> set;
  // The member's value as the config file would spell it; a secret is never shown.
  std::function<std::string(const DaemonConfig&)> show;
  // The member's value as a number; nullopt for settings that are not numbers.
  std::function<std::optional<std::uint64_t>(const DaemonConfig&)> number;

  std::string default_text() const { return show(DaemonConfig{}); }
};

// Every setting, in the order of the reference.
const std::vector<Setting>& setting_table();

// The entry of `key`; null for a key the table does not have.
const Setting* find_setting(std::string_view key);

}  // namespace sandboxd::config
