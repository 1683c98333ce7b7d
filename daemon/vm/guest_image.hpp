// A built guest image on disk: a directory holding vmlinuz, initramfs.cpio
// and manifest.json (written by image/build_image.py).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::vm {

struct GuestImage {
  std::string name;
  std::filesystem::path kernel;
  std::filesystem::path initramfs;
};

// Finds image `name` in the first of `search_roots` that holds a complete one.
// Names are plain words: no path separators, no "..".
Expected<GuestImage, std::string> find_guest_image(const std::string& name,
                                                   const std::vector<std::filesystem::path>& search_roots);

// Where images are looked for: $SANDBOXD_IMAGES (colon-separated), then the
// build tree this binary came from, then /var/lib/sandboxd/images.
std::vector<std::filesystem::path> default_image_roots();

}  // namespace sandboxd::vm
