// The read-only layers of a guest image, as its manifest.json lists them.
//
// A layered image's directory holds, beside vmlinuz and initramfs.cpio, one
// file per layer (`layers/<name>.<fs>`, a squashfs or erofs file system).
// manifest.json names them bottom first:
//
//   "layers": [{"name": "base", "file": "layers/base.squashfs",
//               "fs": "squashfs", "sha256": "<64 hex>", "size": <bytes>}, ...]
//
// The daemon attaches each as a read-only virtio-blk disk in that order; the
// guest agent stacks them under a writable upper and switches root into the
// result. No "layers" (or an empty list) is an initramfs-only image.
//
// The manifest is outside input: parse_image_layers refuses wrong types,
// unknown file systems, names that are not plain words and files outside the
// image directory, with a reason naming the layer. It is pure; whether the
// files exist with the stated size is check_image_layers' job (stat only), and
// their digests verify_layer_digests' (reads every byte: start-up work, never
// on the event loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::vm {

struct ImageLayer {
  std::string name;
  std::filesystem::path file;  // image_dir / the manifest's relative path
  std::string fs;              // "squashfs" or "erofs"
  std::string sha256;          // 64 lowercase hex digits
  std::uint64_t size = 0;      // bytes
  bool operator==(const ImageLayer&) const = default;
};

// More disks than this do not fit microvm's virtio-mmio slots beside the
// console, control port and NIC; a manifest asking for more is refused.
inline constexpr std::size_t kMaxImageLayers = 16;
// manifest.json is read whole; a bigger one is not a manifest.
inline constexpr std::size_t kMaxManifestBytes = 1 << 20;

// The layers of manifest.json's text, bottom first, their files resolved
// against `image_dir`.
Expected<std::vector<ImageLayer>, std::string> parse_image_layers(std::string_view manifest_text,
                                                                 const std::filesystem::path& image_dir);

// Each layer's file is a regular file of its stated size inside image_dir
// (after symbolic links are followed).
Expected<void, std::string> check_image_layers(const std::vector<ImageLayer>& layers,
                                               const std::filesystem::path& image_dir);

// A file's sha256 as 64 lowercase hex digits. Blocking: reads it all.
Expected<std::string, std::string> file_sha256(const std::filesystem::path& file);

// Each layer's file hashes to its stated sha256. Blocking: reads every file.
Expected<void, std::string> verify_layer_digests(const std::vector<ImageLayer>& layers);

}  // namespace sandboxd::vm
