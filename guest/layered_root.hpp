// Booting into a layered image's real root. The initramfs is only the first
// stage: the daemon attaches the image's read-only layers as virtio-blk disks
// (serial "layer0" is the bottom), the agent mounts each, stacks them with
// overlayfs under a writable upper and moves itself and the API file
// systems (/proc, /sys, /dev, /run, /tmp) into the result, which becomes "/".
// It stays PID 1 throughout; every exec then runs in the real root.
//
// The daemon names the layers on the kernel command line,
// "sandbox.layers=base:squashfs,node:squashfs" bottom first: an image made
// from a checkpoint has one more layer than its initramfs knows of. Without
// it, /etc/sandbox/layers (written by the image builder) lists them, one
// "name fs" line each; an initramfs-only image has neither.
//
// The writable layer is a tmpfs, or with "sandbox.upper=disk" on the command
// line the ext4 file system the daemon made on the disk whose serial is
// "upper" (a sparse file on the host, so that what a sandbox writes is not
// held in its memory).
//
// The writable layer's upper directory is bound read-only at
// /run/sandbox/upper, so that a checkpoint can read what the sandbox changed.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::guest {

struct LayerSpec {
  std::string name;
  std::string fs;  // "squashfs" or "erofs"
  bool operator==(const LayerSpec&) const = default;
};

// More than the daemon ever attaches; a longer list is not ours.
inline constexpr std::size_t kMaxLayers = 16;

using LayerList = Expected<std::vector<LayerSpec>, std::string>;

// The layers of /etc/sandbox/layers' text, bottom first. Blank lines and
// "#" comments are skipped; anything else that is not "name fs" is refused.
LayerList parse_layer_list(std::string_view text);

// The layers a kernel command line names with sandbox.layers=, or nothing
// when it names none.
std::optional<LayerList> layers_from_cmdline(std::string_view cmdline);

enum class UpperStore { kTmpfs, kDisk };

// Where the command line puts the writable layer: sandbox.upper=disk or
// =tmpfs, a tmpfs when it says nothing; any other value is refused.
Expected<UpperStore, std::string> upper_store_from_cmdline(std::string_view cmdline);

// The overlayfs mount options for layers mounted at `layer_dir(i)`: lowerdir
// lists them top first, as overlayfs wants.
std::string overlay_options(std::size_t layer_count, const std::string& upper, const std::string& work);

// Where layer i is mounted before the switch.
std::string layer_dir(std::size_t i);

// Block devices by their virtio serial, from a /sys/block-like directory:
// {"layer0": "vda", ...}. Devices without a readable serial are left out.
std::map<std::string, std::string> block_devices_by_serial(const std::string& sys_block);

// Mounts the layers and the overlay and makes it "/", carrying the
// initramfs's /etc/resolv.conf (written by DHCP) across. Waits up to 10 s for
// the disks to appear. On failure "/" is still the initramfs and the agent can
// serve from there; the error says which step failed.
Expected<void, std::string> enter_layered_root(const std::vector<LayerSpec>& layers, UpperStore upper);

}  // namespace sandboxd::guest
