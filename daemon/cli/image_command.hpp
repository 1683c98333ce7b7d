// `sandboxd-host image list`: the guest images this host would boot, found in
// the same roots and order as the daemon looks (SANDBOXD_IMAGES, the build
// tree, /var/lib/sandboxd/images), each with its layers and their sizes; an
// image the daemon would refuse is listed with the reason.
#pragma once

namespace sandboxd::cli {

struct ImageListOptions {
  bool json = false;
};

// 0, or kSandboxFailure when no root holds any image.
int image_list_command(const ImageListOptions& options);

}  // namespace sandboxd::cli
