// A built guest image on disk: a directory holding vmlinuz, initramfs.cpio
// and manifest.json (written by image/build_image.py), and for a layered
// image the read-only layer files the manifest lists (image_layers.hpp).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "daemon/vm/image_layers.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::vm {

struct GuestImage {
  std::string name;
  std::filesystem::path kernel;
  std::filesystem::path initramfs;
  std::vector<ImageLayer> layers;  // bottom first; empty: the initramfs is the whole root
};

// Finds image `name` in the first of `search_roots` that holds a complete one.
// Names are plain words: no path separators, no "..". A complete image whose
// manifest is malformed, or whose layer files are missing or of the wrong
// size, is an error naming the image (not a fall-through to the next root).
// Cheap (stats and one small read); the layers' digests are not checked here.
Expected<GuestImage, std::string> find_guest_image(const std::string& name,
                                                   const std::vector<std::filesystem::path>& search_roots);

// Where images are looked for: $SANDBOXD_IMAGES (colon-separated), then the
// build tree this binary came from, then /var/lib/sandboxd/images.
std::vector<std::filesystem::path> default_image_roots();

}  // namespace sandboxd::vm
