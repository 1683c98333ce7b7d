// `sandboxd-host image list`: the guest images this host would boot, found in
// the same roots and order as the daemon looks (SANDBOXD_IMAGES, the build
// tree, /var/lib/sandboxd/images, then the image store), each with its layers
// and their sizes and, for the store's, whether a checkpoint or `image build`
// made it; an image the daemon would refuse is listed with the reason.
#pragma once

#include <string>
#include <vector>

namespace sandboxd::cli {

struct ImageListOptions {
  bool json = false;
  std::string image_store;  // empty: the daemon's default (images/ in its state dir)
};

// 0, or kSandboxFailure when no root holds any image.
int image_list_command(const ImageListOptions& options);

// `sandboxd-host image rm NAME...`: removes checkpoint images and those
// `image build` made from the image store, whoever made them. Images in other
// roots (the build tree's) are not the store's and are refused by name. A running daemon no longer finds
// a removed image; sandboxes booted from it keep running.
struct ImageRemoveOptions {
  std::vector<std::string> names;
  std::string image_store;  // empty: the daemon's default (images/ in its state dir)
};
// 0 when every name was removed, else kSandboxFailure (each failure said on stderr).
int image_remove_command(const ImageRemoveOptions& options);

// `sandboxd-host image build NAME`: builds layered image NAME with
// image/build_image.py into the image store, where the daemon, `run` and
// `image list` find it. With a config (images.json's format) the user's
// layers and images are merged over the shipped images.json, which the
// builder does and checks (image/image_config.py); without one NAME is a
// shipped image. This side refuses what the builder cannot see: a name the
// store cannot hold, a reserved one, one an earlier image root would shadow,
// one a checkpoint image has; and a caller who is not root (mmdebstrap
// builds the layers' systems as root).
//
// The builder runs as a child (an argv, no shell) with the terminal as its
// stdout and stderr (with --json its stdout goes to stderr, so stdout holds
// only the result) and writes into a directory of its own in the store; the
// store renames it into place once complete (ImageStore::install_built), so
// a failed or interrupted build leaves no image, and a rebuild replaces the
// older one at once. Blocking: the build takes seconds to minutes.
struct ImageBuildOptions {
  std::string name;
  std::string config;       // the user's images.json; empty: NAME is a shipped image
  std::string image_store;  // empty: the daemon's default
  std::string cache;        // the builder's packages, layers and images (shared with the build tree's)
  bool json = false;        // one JSON object on stdout
};

// Where the builder's parts are, as configured at build time (main.cpp).
// Each is overridden by an environment variable, for an installed
// sandboxd: SANDBOXD_IMAGE_BUILDER (build_image.py), SANDBOXD_IMAGE_CONFIG
// (the shipped images.json; when only the builder is overridden, the
// images.json beside it), SANDBOXD_AGENT (the static sandbox-agent).
struct ImageBuilderPaths {
  std::string builder;
  std::string shipped_config;
  std::string agent;
};

// 0 when the image is in the store, else kSandboxFailure (why on stderr).
int image_build_command(const ImageBuildOptions& options, const ImageBuilderPaths& configured);

}  // namespace sandboxd::cli
