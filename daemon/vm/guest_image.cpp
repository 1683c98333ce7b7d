#include "daemon/vm/guest_image.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sandboxd::vm {

namespace {
bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return name != "." && name != "..";
}

Expected<std::vector<ImageLayer>, std::string> read_layers(const std::filesystem::path& dir) {
  std::ifstream in(dir / "manifest.json", std::ios::binary);
  if (!in) return Unexpected{std::string("manifest.json cannot be read")};
  std::string text(kMaxManifestBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  auto layers = parse_image_layers(text, dir);
  if (!layers) return layers;
  if (auto ok = check_image_layers(*layers, dir); !ok) return Unexpected{ok.error()};
  return layers;
}
}  // namespace

Expected<GuestImage, std::string> find_guest_image(const std::string& name,
                                                   const std::vector<std::filesystem::path>& search_roots) {
  if (!valid_name(name)) return Unexpected{"invalid image name '" + name + "' (letters, digits, '-', '_', '.')"};
  std::ostringstream tried;
  for (const auto& root : search_roots) {
    auto dir = root / name;
    GuestImage image{name, dir / "vmlinuz", dir / "initramfs.cpio", {}};
    std::error_code ec;
    if (std::filesystem::is_regular_file(image.kernel, ec) && std::filesystem::is_regular_file(image.initramfs, ec) &&
        std::filesystem::is_regular_file(dir / "manifest.json", ec)) {
      auto layers = read_layers(dir);
      if (!layers) return Unexpected{"guest image '" + name + "' (" + dir.string() + "): " + layers.error()};
      image.layers = std::move(*layers);
      return image;
    }
    tried << ' ' << dir.string();
  }
  return Unexpected{"no guest image '" + name + "' found (looked in:" + tried.str() +
                    "); build it with 'meson compile -C build' or set SANDBOXD_IMAGES"};
}

std::vector<std::filesystem::path> default_image_roots() {
  std::vector<std::filesystem::path> roots;
  if (const char* env = std::getenv("SANDBOXD_IMAGES")) {
    std::stringstream ss(env);
    for (std::string part; std::getline(ss, part, ':');)
      if (!part.empty()) roots.emplace_back(part);
  }
#ifdef SANDBOXD_BUILD_IMAGE_ROOT
  roots.emplace_back(SANDBOXD_BUILD_IMAGE_ROOT);
#endif
  roots.emplace_back("/var/lib/sandboxd/images");
  return roots;
}

}  // namespace sandboxd::vm
