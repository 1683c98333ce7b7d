// sandbox.checkpoint: what a sandbox has written becomes a read-only layer,
// and its image plus that layer a new image that any number of sandboxes can
// then boot from.
//
// The guest does the reading: a root exec syncs, pauses every other process
// in the guest (SIGSTOP, continued afterwards), packs the writable layer's
// upper directory (/run/sandbox/upper, guest/layered_root.hpp) with
// mksquashfs into its own /dev/shm and streams the file out on stdout. The
// host never parses it: it checks the squashfs magic and the size bound,
// writes the stream to the image store as it arrives (off the loop; output
// is acknowledged only once written, so a slow disk slows the guest) and,
// on exit 0, commits the image (vm/image_store.hpp). The new layer is only
// ever mounted by guests, as every other layer is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/agent/guest_agent.hpp"
#include "daemon/service/blocking_work.hpp"
#include "daemon/session/error.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/image_store.hpp"

namespace sandboxd::session {

struct CheckpointSettings {
  const vm::ImageStore* store = nullptr;
  service::BlockingWork* blocking = nullptr;
  // Where image names are looked up (the store among them, last): a
  // checkpoint may not take a name any of them has.
  std::vector<std::filesystem::path> image_roots;
};

// A layer bigger than this is refused (the guest is killed mid-stream): the
// writable layer lives in guest memory, so a real one is far smaller.
inline constexpr std::uint64_t kMaxCheckpointLayerBytes = 64ull << 30;

using CheckpointDone = std::function<void(Expected<vm::GuestImage, Error>)>;

// Checkpoints the machine behind `agent`, booted from `base`, as image
// `name` made by `owner`. `done` runs once on the loop, also when the
// machine goes away meanwhile.
void run_checkpoint(const std::shared_ptr<agent::GuestAgent>& agent, const vm::GuestImage& base, const std::string& name,
                    const std::string& owner, const CheckpointSettings& settings, CheckpointDone done);

}  // namespace sandboxd::session
