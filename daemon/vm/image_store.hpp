// Where images made from checkpoints live: one directory, `image_store` in the
// daemon's settings (default /var/lib/sandboxd/images), searched for images
// after every other root. Each image is a subdirectory laid out like a built
// layered image (vmlinuz, initramfs.cpio, manifest.json, layers/*): the files
// it shares with the image it came from are hard links, so a layer's space is
// given back when the last image using it is removed, and removing an image
// never disturbs a sandbox booted from it (QEMU holds its files open).
//
// Every function blocks on the file system: call them from BlockingWork.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "daemon/vm/guest_image.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::vm {

// A checkpoint's name becomes an image name and its new layer's name:
// 1..64 of A-Z a-z 0-9 . _ -, starting with a letter or digit.
bool valid_checkpoint_name(const std::string& name);

class ImageStore {
 public:
  explicit ImageStore(std::filesystem::path root) : root_(std::move(root)) {}
  const std::filesystem::path& root() const { return root_; }

  // A new directory in the store for one checkpoint's layer to be written
  // into (as <dir>/layer.squashfs); not an image until commit().
  Expected<std::filesystem::path, std::string> begin() const;

  // Makes image `name` from `base` and the layer written into `incoming`:
  // base's kernel, initramfs and layers linked in, the new layer on top,
  // manifest.json last, then the directory renamed into place. `incoming` is
  // gone afterwards, whatever happened.
  // `owner` is recorded in the manifest: only the owner removes it.
  Expected<GuestImage, std::string> commit(const std::string& name, const GuestImage& base,
                                           const std::filesystem::path& incoming, const std::string& owner) const;

  void abandon(const std::filesystem::path& incoming) const;

  // Removes image `name` if it is in the store and `owner` made it (images
  // elsewhere are not the daemon's to remove); without an owner (the host's
  // administrator, `sandboxd-host image rm`), whoever made it. False: the
  // store has no such image (of this owner's).
  Expected<bool, std::string> remove(const std::string& name, const std::optional<std::string>& owner) const;

 private:
  std::filesystem::path root_;
};

// The squashfs magic, "hsqs": what a layer streamed from a guest must begin with.
bool looks_like_squashfs(const std::string& first_bytes);

}  // namespace sandboxd::vm
