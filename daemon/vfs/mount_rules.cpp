#include "daemon/vfs/mount_rules.hpp"

#include <system_error>

#include "protocol/fs_messages.hpp"

namespace sandboxd::vfs {

namespace {

bool beneath_or_at(std::string_view path, std::string_view root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.substr(0, root.size()) == root && path[root.size()] == '/');
}

}  // namespace

std::optional<std::string> mount_path_problem(std::string_view path) {
  if (path.empty() || path[0] != '/') return "must be an absolute path";
  if (path.size() > protocol::fs::kMaxPath) return "longer than " + std::to_string(protocol::fs::kMaxPath) + " bytes";
  if (path.find('\0') != std::string_view::npos) return "contains a NUL character";
  if (path == "/") return "cannot be / itself";
  if (path.back() == '/') return "must not end with /";
  std::string_view rest = path.substr(1);
  while (!rest.empty()) {
    auto slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part.empty()) return "has an empty component (//)";
    if (part == "." || part == "..") return "has a . or .. component";
    if (part.size() > protocol::fs::kMaxName) return "has a component longer than 255 bytes";
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  for (std::string_view reserved : {"/proc", "/sys", "/dev", "/run"})
    if (beneath_or_at(path, reserved)) return "lies in " + std::string(reserved) + ", which the guest's system needs";
  return std::nullopt;
}

bool mount_paths_overlap(std::string_view a, std::string_view b) { return beneath_or_at(a, b) || beneath_or_at(b, a); }

Expected<std::filesystem::path, std::string> resolve_host_root(std::string_view requested,
                                                              const std::vector<std::filesystem::path>& allowed) {
  if (requested.empty() || requested[0] != '/') return Unexpected{std::string("must be an absolute path")};
  if (requested.find('\0') != std::string_view::npos) return Unexpected{std::string("contains a NUL character")};
  if (allowed.empty())
    return Unexpected{std::string("this daemon allows no host mounts (allowed_host_roots is empty)")};
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::canonical(std::filesystem::path(requested), ec);
  if (ec) return Unexpected{"cannot be resolved on the host: " + ec.message()};
  if (!std::filesystem::is_directory(canonical, ec)) return Unexpected{std::string("is not a directory on the host")};
  for (const auto& root : allowed) {
    std::filesystem::path canonical_root = std::filesystem::canonical(root, ec);
    if (ec) continue;  // a configured root that does not exist allows nothing
    if (beneath_or_at(canonical.string(), canonical_root.string())) return canonical;
  }
  return Unexpected{std::string("lies outside every allowed_host_roots directory")};
}

}  // namespace sandboxd::vfs
