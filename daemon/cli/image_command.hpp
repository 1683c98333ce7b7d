// `sandboxd-host image list`: the guest images this host would boot, found in
// the same roots and order as the daemon looks (SANDBOXD_IMAGES, the build
// tree, /var/lib/sandboxd/images), each with its layers and their sizes; an
// image the daemon would refuse is listed with the reason.
#pragma once

#include <string>
#include <vector>

namespace sandboxd::cli {

struct ImageListOptions {
  bool json = false;
};

// 0, or kSandboxFailure when no root holds any image.
int image_list_command(const ImageListOptions& options);

// `sandboxd-host image rm NAME...`: removes checkpoint images from the image
// store, whoever made them. Built images (the build's, in other roots) are
// not the store's and are refused by name. A running daemon no longer finds
// a removed image; sandboxes booted from it keep running.
struct ImageRemoveOptions {
  std::vector<std::string> names;
  std::string image_store;  // empty: the daemon's default (images/ in its state dir)
};
// 0 when every name was removed, else kSandboxFailure (each failure said on stderr).
int image_remove_command(const ImageRemoveOptions& options);

}  // namespace sandboxd::cli
