// What a client may ask the sandbox service to do, as typed values.
//
// The API layer builds these from the wire (api/requests.hpp) and has
// already checked every member's type and its fixed range there; what depends
// on the daemon's configuration (max_cpus, the per-token limits, ...) is
// checked where the request is carried out. Absent optional members take the
// service's defaults (session/service_config.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/net/egress/egress_policy.hpp"
#include "policy/network_policy.hpp"
#include "protocol/enum_names.hpp"

namespace sandboxd::session {

using Labels = std::map<std::string, std::string>;

// Where a layered sandbox's writable layer lives: a tmpfs in the guest's
// memory, or an ext4 file system in a sparse file on the host
// (vm/writable_disk.hpp), which a sandbox's writes do not hold in memory.
enum class DiskBacking { kMemory, kFile };
inline constexpr auto kDiskBackingNames = make_enum_names(EnumName<DiskBacking>{DiskBacking::kMemory, "memory"},
                                                          EnumName<DiskBacking>{DiskBacking::kFile, "file"});
inline std::string_view to_string(DiskBacking b) { return kDiskBackingNames.name(b); }

// One file a `memory` mount starts with.
struct MountFileParams {
  std::string path;  // relative to the mount's root
  std::string contents;
  std::uint32_t mode = 0644;
};

enum class MountType { kHost, kMemory };

// A host-controlled mount (daemon/vfs): what the guest sees under `path`.
struct MountParams {
  std::string path;  // absolute, in the guest
  MountType type = MountType::kMemory;
  std::string host_path;                // host: the directory served
  std::vector<MountFileParams> files;   // memory: the starting contents
  std::uint32_t size_mib = 0;           // memory: its capacity; 0: the default
  bool read_only = false;
};

// What a sandbox's network is asked to be: an old egress mode ("deny-all",
// "allow-all"), or rules (policy/network_policy.hpp).
struct NetworkChoice {
  std::optional<net::EgressMode> mode;  // set: what the mode stands for; unset: `rules`
  policy::NetworkPolicy rules;

  // What the Sandbox object's `egress` says: the mode's name, or "policy".
  std::string_view label() const { return mode ? to_string(*mode) : std::string_view("policy"); }
};

struct CreateSandboxParams {
  std::optional<std::string> image;
  std::optional<unsigned> cpus;
  std::optional<unsigned> memory_mib;
  // The size of the writable layer: in memory at most memory_mib, unset half
  // the memory (the tmpfs default); in a file at most max_disk_mib, unset
  // ServiceConfig::default_file_disk_mib.
  std::optional<unsigned> disk_mib;
  std::optional<DiskBacking> disk_backing;  // unset: memory
  std::vector<std::string> env;  // NAME=value, for every exec
  Labels labels;
  std::optional<std::uint32_t> lifetime_s;      // 0: none
  std::optional<std::uint32_t> idle_timeout_s;  // 0: none
  std::optional<NetworkChoice> network;  // `egress` or `network`; unset: the daemon's default
  // Client-chosen, unique per owner: a create with the key of a sandbox that
  // exists (booting or live) starts nothing and answers with that sandbox.
  std::optional<std::string> key;
  std::vector<MountParams> mounts;  // at most protocol::fs::kMaxMounts
};

struct TerminalParams {
  std::uint16_t cols = 80;
  std::uint16_t rows = 24;
  std::string term = "xterm-256color";
};

struct ExecStartParams {
  std::string sandbox;
  std::string exec_id;  // empty: the service picks one
  std::vector<std::string> argv;
  std::vector<std::string> env;  // NAME=value
  std::string cwd;
  std::uint64_t timeout_ms = 0;  // 0: none
  bool stdin_open = false;
  std::optional<TerminalParams> pty;
  std::string user;  // the guest account the process runs as; empty: root
};

}  // namespace sandboxd::session
