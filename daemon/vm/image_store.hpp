// Where images made from checkpoints and by `sandboxd-host image build` live:
// one directory, `image_store` in the daemon's settings (default
// /var/lib/sandboxd/images), searched for images after every other root. Each
// image is a subdirectory laid out like a built layered image (vmlinuz,
// initramfs.cpio, manifest.json, layers/*): the files it shares with the image
// it came from (or with the builder's cache) are hard links, so a layer's
// space is given back when the last image using it is removed, and removing
// an image never disturbs a sandbox booted from it (QEMU holds its files open).
//
// The manifest says who made an image: a checkpoint records its `owner`, a
// build `"built_by": "sandboxd-host image build"`. Work in progress sits in
// dot-directories (.incoming-*, .image-*, .build-*, .removed-*), which are
// never image names.
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

// Who made the image in a directory, as its manifest says.
struct ImageOrigin {
  enum class Kind { kOther, kCheckpoint, kBuilt };  // kOther: no manifest, or not made in a store
  Kind kind = Kind::kOther;
  std::string owner;  // a checkpoint's
};
ImageOrigin read_image_origin(const std::filesystem::path& image_dir);

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

  // A new directory in the store for image/build_image.py to write a whole
  // image into (--out); not an image until install_built(). Builds abandoned
  // more than a day ago (a builder killed outright) are removed first.
  Expected<std::filesystem::path, std::string> begin_build() const;

  // Makes the image built in `built` (a begin_build() directory) the store's
  // image `name`: its manifest must name it and its files must be complete;
  // the manifest is marked as built here, then the directory is renamed into
  // place. An older build of the same name is swapped out in the same rename
  // (renameat2 RENAME_EXCHANGE, so the name never goes missing) and removed;
  // a checkpoint image of that name is not replaced. `built` is gone
  // afterwards, whatever happened. `replaced` tells whether an older build was.
  Expected<GuestImage, std::string> install_built(const std::string& name, const std::filesystem::path& built,
                                                  bool* replaced = nullptr) const;

  // Removes image `name` if it is in the store and `owner` made it (images
  // elsewhere are not the daemon's to remove); without an owner (the host's
  // administrator, `sandboxd-host image rm`), any checkpoint or built image.
  // False: the store has no such image (of this owner's).
  Expected<bool, std::string> remove(const std::string& name, const std::optional<std::string>& owner) const;

 private:
  std::filesystem::path root_;
};

// The squashfs magic, "hsqs": what a layer streamed from a guest must begin with.
bool looks_like_squashfs(const std::string& first_bytes);

}  // namespace sandboxd::vm
