// Which mounts a sandbox may ask for: where in the guest, and which host
// directory. Checked before anything is mounted, so a request that breaks a
// rule is refused whole with the rule it broke.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::vfs {

// Why `path` cannot be a mount point in the guest, or nothing when it can:
// absolute, at most protocol::fs::kMaxPath bytes, no NUL, no empty, "." or
// ".." component, no trailing '/', not "/" itself, and not in the kernel's
// and the agent's own trees (/proc, /sys, /dev, /run), which a mount would
// hide from the guest's tools or from sandboxd itself.
std::optional<std::string> mount_path_problem(std::string_view path);

// True when one of two mount paths is the other or lies beneath it.
bool mount_paths_overlap(std::string_view a, std::string_view b);

// The directory a `host` mount of `requested` serves: its canonical path,
// which must be an existing directory equal to or beneath the canonical path
// of one of `allowed`. Symbolic links in `requested` are resolved here, once,
// by the host's rules; from then on the provider never follows one.
Expected<std::filesystem::path, std::string> resolve_host_root(std::string_view requested,
                                                              const std::vector<std::filesystem::path>& allowed);

}  // namespace sandboxd::vfs
