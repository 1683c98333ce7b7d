// The command-line flags of `serve` that set a setting, made from the table:
// each entry with a flag gets one, with the entry's doc line as its help and
// the entry's own parser as its check, so a flag accepts exactly what the
// config file accepts and refuses the rest with the same message, named by
// the flag ("--pool-size: expected an integer 0..64").
//
// A flag's text is kept as given and applied over the config file's
// settings once the file has been read: flags override the file. A flag the
// table marks as repeatable ("--allow-origin") adds to a list; its uses
// together replace the file's list.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include "daemon/config/daemon_config.hpp"
#include "daemon/config/setting_table.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::config {

struct SettingFlags {
  // The settings given on the command line, each with its text.
  std::vector<std::pair<const Setting*, std::string>> given;
};

// Adds a flag to `command` for every setting that has one.
void add_setting_flags(CLI::App& command, SettingFlags& flags);

// Sets what the flags gave over `config`.
Expected<void, std::string> apply_setting_flags(const SettingFlags& flags, DaemonConfig& config);

}  // namespace sandboxd::config
