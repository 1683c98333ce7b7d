#include "daemon/vm/image_store.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string_view>

namespace sandboxd::vm {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// A hard link where the file system allows one (the store shares layers that
// way), a copy where it does not (another file system).
Expected<void, std::string> link_or_copy(const fs::path& from, const fs::path& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return {};
  if (errno != EXDEV && errno != EPERM && errno != EMLINK) return Unexpected{errno_text("link " + from.string())};
  std::error_code ec;
  fs::copy_file(from, to, ec);
  if (ec) return Unexpected{"copy " + from.string() + ": " + ec.message()};
  return {};
}

Expected<fs::path, std::string> make_temp_dir(const fs::path& root, const std::string& prefix) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Unexpected{"image store " + root.string() + ": " + ec.message()};
  std::string pattern = (root / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) return Unexpected{errno_text("image store " + root.string())};
  return fs::path(pattern);
}

constexpr std::string_view kBuiltBy = "sandboxd-host image build";
// Longer than any build takes (a new Debian layer is minutes), so a
// directory this old has no builder left.
constexpr auto kAbandonedBuildAge = std::chrono::hours(24);

Expected<json::object, std::string> read_manifest(const fs::path& dir) {
  std::ifstream in(dir / "manifest.json", std::ios::binary);
  if (!in) return Unexpected{std::string("manifest.json cannot be read")};
  std::string text(kMaxManifestBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  boost::system::error_code parse_error;
  json::value manifest = json::parse(text, parse_error);
  if (parse_error || !manifest.is_object()) return Unexpected{std::string("manifest.json is not a JSON object")};
  return std::move(manifest.as_object());
}

void remove_abandoned_builds(const fs::path& root) {
  std::error_code ec;
  auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.path().filename().string().rfind(".build-", 0) != 0) continue;
    auto changed = fs::last_write_time(entry.path(), ec);
    if (!ec && now - changed > kAbandonedBuildAge) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

ImageOrigin read_image_origin(const fs::path& image_dir) {
  auto manifest = read_manifest(image_dir);
  if (!manifest) return {};
  if (const json::value* owner = manifest->if_contains("owner"); owner && owner->is_string())
    return {ImageOrigin::Kind::kCheckpoint, std::string(owner->get_string())};
  if (const json::value* by = manifest->if_contains("built_by"); by && by->is_string() && by->get_string() == kBuiltBy)
    return {ImageOrigin::Kind::kBuilt, {}};
  return {};
}

bool valid_checkpoint_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!word(name.front())) return false;
  for (char c : name)
    if (!word(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

bool looks_like_squashfs(const std::string& first_bytes) { return first_bytes.rfind("hsqs", 0) == 0; }

Expected<fs::path, std::string> ImageStore::begin() const { return make_temp_dir(root_, ".incoming-"); }

void ImageStore::abandon(const fs::path& incoming) const {
  std::error_code ec;
  fs::remove_all(incoming, ec);
}

Expected<fs::path, std::string> ImageStore::begin_build() const {
  remove_abandoned_builds(root_);
  return make_temp_dir(root_, ".build-");
}

Expected<GuestImage, std::string> ImageStore::install_built(const std::string& name, const fs::path& built,
                                                            bool* replaced) const {
  // Whatever is at `built` at the end goes: the build when it failed, the
  // older image it was swapped with when it replaced one.
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ec;
      if (!path.empty()) fs::remove_all(path, ec);
    }
  } cleanup{built};
  if (replaced) *replaced = false;

  if (!valid_checkpoint_name(name)) return Unexpected{"'" + name + "' is not an image name"};
  auto manifest = read_manifest(built);
  if (!manifest) return Unexpected{"the build: " + manifest.error()};
  const json::value* built_name = manifest->if_contains("name");
  if (!built_name || !built_name->is_string() || built_name->get_string() != name)
    return Unexpected{"the build's manifest.json does not name image '" + name + "'"};
  if (auto complete = find_guest_image(built.filename().string(), {built.parent_path()}); !complete)
    return Unexpected{complete.error()};
  (*manifest)["built_by"] = kBuiltBy;
  {
    std::ofstream out(built / "manifest.json.tmp", std::ios::binary | std::ios::trunc);
    out << json::serialize(*manifest) << "\n";
    out.flush();
    if (!out) return Unexpected{std::string("image store: cannot write manifest.json")};
  }
  std::error_code ec;
  fs::rename(built / "manifest.json.tmp", built / "manifest.json", ec);
  if (ec) return Unexpected{"image store: " + ec.message()};

  fs::path target = root_ / name;
  if (::rename(built.c_str(), target.c_str()) == 0) {
    cleanup.path.clear();
    return find_guest_image(name, {root_});
  }
  if (errno != EEXIST && errno != ENOTEMPTY) return Unexpected{errno_text("image store: " + target.string())};
  auto origin = read_image_origin(target);
  if (origin.kind == ImageOrigin::Kind::kCheckpoint)
    return Unexpected{"the store's image '" + name + "' is a checkpoint image and is not replaced (remove it with " +
                      "'sandboxd-host image rm " + name + "' first)"};
  if (origin.kind != ImageOrigin::Kind::kBuilt)
    return Unexpected{target.string() + " was not made by 'sandboxd-host image build' and is not replaced"};
  if (::renameat2(AT_FDCWD, built.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
    return Unexpected{errno_text("image store: " + target.string())};
  if (replaced) *replaced = true;
  return find_guest_image(name, {root_});
}

Expected<GuestImage, std::string> ImageStore::commit(const std::string& name, const GuestImage& base,
                                                     const fs::path& incoming, const std::string& owner) const {
  struct Cleanup {
    std::vector<fs::path> paths;
    ~Cleanup() {
      std::error_code ec;
      for (const auto& p : paths) fs::remove_all(p, ec);
    }
  } cleanup{{incoming}};

  if (!valid_checkpoint_name(name)) return Unexpected{"'" + name + "' is not a checkpoint name"};
  std::error_code ec;
  if (fs::exists(root_ / name, ec)) return Unexpected{"the store already has an image '" + name + "'"};
  fs::path layer_file = incoming / "layer.squashfs";
  std::string head(4, '\0');
  {
    std::ifstream in(layer_file, std::ios::binary);
    in.read(head.data(), 4);
    if (in.gcount() != 4 || !looks_like_squashfs(head)) return Unexpected{std::string("the guest's layer is not a squashfs")};
  }
  auto size = fs::file_size(layer_file, ec);
  if (ec) return Unexpected{"the new layer: " + ec.message()};
  auto digest = file_sha256(layer_file);
  if (!digest) return Unexpected{"the new layer: " + digest.error()};

  auto dir = make_temp_dir(root_, ".image-");
  if (!dir) return Unexpected{dir.error()};
  cleanup.paths.push_back(*dir);
  fs::create_directory(*dir / "layers", ec);
  if (ec) return Unexpected{"image store: " + ec.message()};
  if (auto ok = link_or_copy(base.kernel, *dir / "vmlinuz"); !ok) return Unexpected{ok.error()};
  if (auto ok = link_or_copy(base.initramfs, *dir / "initramfs.cpio"); !ok) return Unexpected{ok.error()};

  json::array layers;
  auto add_layer = [&](const std::string& layer_name, const std::string& fs_type, const std::string& sha256,
                       std::uint64_t bytes) {
    std::string file = "layers/" + layer_name + "." + fs_type;
    layers.push_back(json::object{{"name", layer_name}, {"file", file}, {"fs", fs_type}, {"sha256", sha256},
                                  {"size", bytes}});
    return *dir / file;
  };
  for (const ImageLayer& layer : base.layers) {
    if (layer.name == name) return Unexpected{"'" + name + "' names a layer of image '" + base.name + "' already"};
    auto ok = link_or_copy(layer.file, add_layer(layer.name, layer.fs, layer.sha256, layer.size));
    if (!ok) return Unexpected{ok.error()};
  }
  fs::rename(layer_file, add_layer(name, "squashfs", *digest, size), ec);
  if (ec) return Unexpected{"the new layer: " + ec.message()};

  json::object manifest{{"name", name}, {"checkpoint_of", base.name}, {"owner", owner}, {"layers", std::move(layers)}};
  {
    std::ofstream out(*dir / "manifest.json", std::ios::binary | std::ios::trunc);
    out << json::serialize(manifest) << "\n";
    out.flush();
    if (!out) return Unexpected{std::string("image store: cannot write manifest.json")};
  }
  // rename() onto an empty directory would succeed: the check above is what
  // keeps an existing image, and names are only committed on one thread.
  fs::rename(*dir, root_ / name, ec);
  if (ec) return Unexpected{"image store: " + ec.message()};
  cleanup.paths.pop_back();
  return find_guest_image(name, {root_});
}

Expected<bool, std::string> ImageStore::remove(const std::string& name, const std::optional<std::string>& owner) const {
  if (!valid_checkpoint_name(name)) return false;
  std::error_code ec;
  fs::path dir = root_ / name;
  auto origin = read_image_origin(dir);
  if (origin.kind == ImageOrigin::Kind::kOther) return false;  // not an image the store made
  if (owner && (origin.kind != ImageOrigin::Kind::kCheckpoint || origin.owner != *owner)) return false;
  // Out of the way first, so that the name is free at once and a half-removed
  // image is never found.
  auto gone = make_temp_dir(root_, ".removed-");
  if (!gone) return Unexpected{gone.error()};
  fs::rename(dir, *gone / "image", ec);
  if (ec) {
    fs::remove_all(*gone, ec);
    return Unexpected{"image store: " + ec.message()};
  }
  fs::remove_all(*gone, ec);
  return true;
}

}  // namespace sandboxd::vm
