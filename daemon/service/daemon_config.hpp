// The daemon's configuration file. This comment is its reference.
//
// One setting a line, `key = value`, blanks around either ignored. Blank lines
// and lines whose first non-blank character is `#` are ignored, and so is a
// `#` comment after a value when a blank comes before it. A value may be put
// in double quotes to keep outer blanks or a ` #`; inside them \" stands for
// a quote and \\ for a backslash, and there is no other escape. Control
// characters are not allowed in values. A key may be set once; an unknown
// key, a repeated key or a value out of range is an error naming the line, so
// a misspelt key never silently leaves a default in place. Keys absent from
// the file keep their defaults.
//
// Sizes are bytes, or a number with a K, M or G suffix (1024, 1024², 1024³).
// Durations are seconds, or a number with an s, m or h suffix.
//
//   key                      default          values
//   listen                   127.0.0.1:7070   host:port of the TCP control plane; an IPv6 address in
//                                             brackets ([::1]:7070); port 0 takes any free port;
//                                             empty disables TCP
//   socket_path              (empty)          the control plane's unix socket, an absolute path of at
//                                             most 107 bytes; empty: <runtime_dir>/api.sock; none
//                                             disables it
//   runtime_dir              (empty)          an absolute path; empty: /run/sandboxd as root, else
//                                             $XDG_RUNTIME_DIR/sandboxd or /tmp/sandboxd-<uid>
//   token_file               (empty)          an absolute path; empty: <state dir>/token, the state dir
//                                             being /var/lib/sandboxd as root, else
//                                             $XDG_STATE_HOME/sandboxd or ~/.local/state/sandboxd;
//                                             created with a random token when missing
//   token                    (empty)          the token itself, used instead of token_file: 16 to 1024
//                                             printable ASCII characters, no blanks. A config file
//                                             holding one must be readable by its owner only.
//   allowed_origins          (empty)          comma-separated browser origins (scheme://host[:port])
//                                             that may connect; * allows any; empty allows none
//   image                    default          guest image of sandboxes that do not name one (letters,
//                                             digits, '-', '_', '.')
//   pool_size                2                warm VMs kept per image and shape, 0..64
//   default_cpus             1                vCPUs of a sandbox that does not ask, 1..max_cpus
//   default_memory_mib       256              memory (MiB) of a sandbox that does not ask,
//                                             64..max_memory_mib
//   max_cpus                 4                the most vCPUs a sandbox may ask for, 1..64
//   max_memory_mib           4096             the most memory (MiB) a sandbox may ask for, 64..65536
//   max_sandboxes_per_token  16               sandboxes one token may hold at once, 1..10000
//   max_frame_bytes          1M               largest control-plane message, size 1K..64M
//   max_pending_requests     64               requests one connection may have in flight, 1..10000
//   exec_log_bytes           16M              output kept per exec, size 64K..1G
//   exec_retention_s         10m              how long a finished exec stays readable, 0..8760h
//   max_retained_execs       1000             finished execs kept readable at once, 0..1000000
//   default_lifetime_s       1h               a sandbox's lifetime unless it asks, 0..8760h; 0: none
//   default_idle_timeout_s   10m              idle time after which a sandbox is removed, 0..8760h;
//                                             0: none
//   accelerator              auto             auto, kvm or tcg
//   network                  stack            stack, slirp or none
//   egress                   deny-all         deny-all or allow-all
//   log_level                info             trace, debug, info, warn, error or off
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::service {

struct DaemonConfig {
  std::string listen = "127.0.0.1:7070";
  std::string socket_path;  // "" = <runtime_dir>/api.sock; "none" = no unix socket
  std::filesystem::path runtime_dir;
  std::filesystem::path token_file;
  std::string token;  // a secret: never logged, never echoed in errors
  std::vector<std::string> allowed_origins;
  std::string image = "default";
  unsigned pool_size = 2;
  unsigned default_cpus = 1;
  unsigned default_memory_mib = 256;
  unsigned max_cpus = 4;
  unsigned max_memory_mib = 4096;
  unsigned max_sandboxes_per_token = 16;
  unsigned max_frame_bytes = 1u << 20;
  unsigned max_pending_requests = 64;
  std::uint64_t exec_log_bytes = 16u << 20;
  unsigned exec_retention_s = 600;
  unsigned max_retained_execs = 1000;
  unsigned default_lifetime_s = 3600;     // 0 = none
  unsigned default_idle_timeout_s = 600;  // 0 = none
  std::string accelerator = "auto";
  std::string network = "stack";
  std::string egress = "deny-all";
  std::string log_level = "info";

  friend bool operator==(const DaemonConfig&, const DaemonConfig&) = default;
};

inline constexpr std::size_t kMaxConfigFileBytes = 1u << 20;

// The settings of `text` applied over `base`. Errors read
// "line 7: unknown key 'pol_size'" or "line 3: pool_size: expected an integer 0..64".
Expected<DaemonConfig, std::string> parse_daemon_config(std::string_view text, DaemonConfig base = {});

// Reads `file` (a regular file of at most kMaxConfigFileBytes) and parses it
// over `base`. Errors start with the file's path.
Expected<DaemonConfig, std::string> load_daemon_config(const std::filesystem::path& file, DaemonConfig base = {});

}  // namespace sandboxd::service
