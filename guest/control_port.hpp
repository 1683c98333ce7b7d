// Finding the virtio-serial port the host talks on. There is no udev in the
// guest, so no /dev/virtio-ports/NAME symlink: the port's name is read from
// sysfs and its node (/dev/vportNpM) is created by devtmpfs, possibly a little
// after the driver announced it.
#pragma once

#include <chrono>
#include <string>

namespace sandboxd::guest {

inline constexpr const char* kControlPortName = "sandbox.ctl";
// The mounts protocol's port (guest/fs_bridge.hpp); older hosts have none.
inline constexpr const char* kFsPortName = "sandbox.fs";

// The /dev path of the port named `name`, or "" if none within `wait`.
std::string find_virtio_port(const std::string& name, std::chrono::milliseconds wait);

// Opens the port read-write, non-blocking; -1 if it cannot within `wait`.
int open_virtio_port(const std::string& dev_path, std::chrono::milliseconds wait);

}  // namespace sandboxd::guest
