// The settings the daemon itself reads, as opposed to a component below it:
// where the control plane listens, who may connect, where the daemon keeps
// its records of what each sandbox holds, and how much it logs.
//
// `serve` resolves the empty defaults (the socket beside the runtime dir, the
// token file in the state dir) when it starts, because they depend on who
// runs it; here they stay empty, so the configuration says only what was
// asked for. Each member's key, range and doc line are in the setting table
// (setting_table.cpp).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <spdlog/common.h>

#include "protocol/enum_names.hpp"

namespace sandboxd::config {

struct ListenConfig {
  std::string address = "127.0.0.1:7070";  // host:port of the TCP listener; empty: no TCP
  std::string socket_path;                 // empty: <runtime dir>/api.sock; "none": no unix socket
  friend bool operator==(const ListenConfig&, const ListenConfig&) = default;
};

struct AccessConfig {
  std::filesystem::path token_file;  // empty: <state dir>/token
  std::string token;                 // a secret: never logged, never echoed in errors
  std::vector<std::string> allowed_origins;
  friend bool operator==(const AccessConfig&, const AccessConfig&) = default;
};

struct RuntimeConfig {
  std::filesystem::path dir;  // empty: the default for the user (service/runtime_dir.hpp)
  std::filesystem::path image_store;  // empty: images/ in the state dir (beside the default token file)
  std::filesystem::path disk_dir;     // empty: disks/ in the state dir
  friend bool operator==(const RuntimeConfig&, const RuntimeConfig&) = default;
};

// The levels a config may name; spdlog's "critical" is not one of them.
inline constexpr auto kLogLevelNames =
    make_enum_names(EnumName<spdlog::level::level_enum>{spdlog::level::trace, "trace"},
                    EnumName<spdlog::level::level_enum>{spdlog::level::debug, "debug"},
                    EnumName<spdlog::level::level_enum>{spdlog::level::info, "info"},
                    EnumName<spdlog::level::level_enum>{spdlog::level::warn, "warn"},
                    EnumName<spdlog::level::level_enum>{spdlog::level::err, "error"},
                    EnumName<spdlog::level::level_enum>{spdlog::level::off, "off"});

// The egress settings `serve` applies to every sandbox's network. The file
// is read when the daemon starts (a setting holds only its path).
struct NetworkSettings {
  std::filesystem::path policy_file;      // empty: the `egress` mode is every sandbox's default
  std::vector<std::string> host_aliases;  // NAME=IP, checked by the value kind
  friend bool operator==(const NetworkSettings&, const NetworkSettings&) = default;
};

struct LoggingConfig {
  spdlog::level::level_enum level = spdlog::level::info;
  friend bool operator==(const LoggingConfig&, const LoggingConfig&) = default;
};

}  // namespace sandboxd::config
