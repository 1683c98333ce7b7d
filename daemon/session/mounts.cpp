#include "daemon/session/mounts.hpp"

#include <cstring>

#include "daemon/vfs/host_provider.hpp"
#include "daemon/vfs/memory_provider.hpp"
#include "daemon/vfs/mount_rules.hpp"

namespace sandboxd::session {

namespace {

std::string field_of(const MountParams& m) { return "mounts." + m.path.substr(0, 200); }

Expected<std::shared_ptr<vfs::Provider>, Error> make_provider(const MountParams& m,
                                                             const std::vector<std::filesystem::path>& allowed) {
  if (m.type == MountType::kHost) {
    auto root = vfs::resolve_host_root(m.host_path, allowed);
    if (!root) return Unexpected{Error::bad_request(field_of(m) + ".path", "host path " + root.error())};
    auto provider = vfs::HostProvider::open(*root, {});
    if (!provider)
      return Unexpected{Error::bad_request(field_of(m) + ".path",
                                           "host path cannot be opened: " + std::string(std::strerror(provider.error())))};
    return std::shared_ptr<vfs::Provider>(std::move(*provider));
  }
  std::vector<vfs::MemoryFile> files;
  files.reserve(m.files.size());
  for (const auto& f : m.files) files.push_back({f.path, f.contents, f.mode});
  vfs::MemoryProvider::Options options;
  options.capacity_bytes = std::uint64_t{m.size_mib ? m.size_mib : kDefaultMemoryMountMib} << 20;
  auto provider = vfs::MemoryProvider::create(files, options);
  if (!provider) return Unexpected{Error::bad_request(field_of(m) + ".files", provider.error())};
  return std::shared_ptr<vfs::Provider>(std::move(*provider));
}

}  // namespace

Expected<PreparedMounts, Error> prepare_mounts(const std::vector<MountParams>& mounts,
                                               const std::vector<std::filesystem::path>& allowed_host_roots) {
  PreparedMounts out;
  for (std::size_t i = 0; i < mounts.size(); ++i) {
    const MountParams& m = mounts[i];
    if (auto problem = vfs::mount_path_problem(m.path)) return Unexpected{Error::bad_request(field_of(m), *problem)};
    for (std::size_t j = 0; j < i; ++j) {
      if (vfs::mount_paths_overlap(m.path, mounts[j].path))
        return Unexpected{Error::bad_request(field_of(m), "overlaps the mount at " + mounts[j].path)};
    }
    auto provider = make_provider(m, allowed_host_roots);
    if (!provider) return Unexpected{provider.error()};
    out.specs.push_back({m.path, std::move(*provider), m.read_only});
    out.shown.push_back({m.path, m.type == MountType::kHost ? "host" : "memory", m.host_path, m.read_only});
  }
  return out;
}

void mount_all(const std::shared_ptr<vfs::FsServer>& server, std::vector<vfs::MountSpec> specs,
               std::function<void(Expected<void, Error>)> done) {
  if (specs.empty()) return done({});
  vfs::MountSpec first = std::move(specs.front());
  specs.erase(specs.begin());
  std::string path = first.path;
  std::weak_ptr<vfs::FsServer> weak = server;
  server->mount(std::move(first), [weak, path, rest = std::move(specs),
                                   done = std::move(done)](Expected<void, std::string> mounted) mutable {
    if (!mounted)
      return done(Unexpected{Error{ErrorCode::kUnavailable, "mounting " + path + " in the guest: " + mounted.error()}});
    auto still = weak.lock();
    if (!still) return done(Unexpected{Error{ErrorCode::kUnavailable, "the machine ended while mounting"}});
    mount_all(still, std::move(rest), std::move(done));
  });
}

}  // namespace sandboxd::session
