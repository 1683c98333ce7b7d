// A sandbox's host-controlled mounts, from request to mounted: the rules
// each must pass (daemon/vfs/mount_rules.hpp), the provider that will serve
// it, and mounting them in the guest one after the other once the machine
// is up.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/session/error.hpp"
#include "daemon/session/requests.hpp"
#include "daemon/session/views.hpp"
#include "daemon/vfs/fs_server.hpp"

namespace sandboxd::session {

// A memory mount's capacity when it does not ask for one.
inline constexpr std::uint32_t kDefaultMemoryMountMib = 64;

struct PreparedMounts {
  std::vector<vfs::MountSpec> specs;
  std::vector<MountInfo> shown;  // for the Sandbox object
};

// Checks every mount and makes its provider; the first mount that breaks a
// rule refuses them all (bad_request naming "mounts.<path>"). Opens host
// directories and copies memory files: quick, local work.
Expected<PreparedMounts, Error> prepare_mounts(const std::vector<MountParams>& mounts,
                                               const std::vector<std::filesystem::path>& allowed_host_roots);

// Mounts `specs` in order through `server`; `done` gets the first failure,
// naming the mount.
void mount_all(const std::shared_ptr<vfs::FsServer>& server, std::vector<vfs::MountSpec> specs,
               std::function<void(Expected<void, Error>)> done);

}  // namespace sandboxd::session
