// A file-backed writable layer: an ext4 file system in a sparse file on the
// host, attached as a virtio-blk disk that the guest stacks its overlay on
// (instead of a tmpfs in its memory). The file has no name (O_TMPFILE in
// the disk directory): it exists only while the daemon and QEMU hold it
// open, so its space comes back when the sandbox ends, even when the daemon
// or QEMU is killed, and no other process on the host can open it by path.
//
// make() blocks on the file system and runs mke2fs: call it from BlockingWork.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "protocol/expected.hpp"

namespace sandboxd::vm {

// The guest finds the disk by this virtio-blk serial.
inline constexpr const char* kWritableDiskSerial = "upper";

class WritableDisk {
 public:
  // A fresh, empty ext4 file system of `mib` MiB in `dir`. Refused when the
  // directory's file system has less than that free: the file is sparse, but
  // a guest may fill it, and a host file system that fills first would make
  // the guest's writes fail with EIO instead of ENOSPC.
  static Expected<std::shared_ptr<WritableDisk>, std::string> make(const std::filesystem::path& dir, unsigned mib);

  ~WritableDisk();
  WritableDisk(const WritableDisk&) = delete;
  WritableDisk& operator=(const WritableDisk&) = delete;

  int fd() const { return fd_; }  // read-write, close-on-exec
  unsigned mib() const { return mib_; }

 private:
  WritableDisk(int fd, unsigned mib) : fd_(fd), mib_(mib) {}
  int fd_;
  unsigned mib_;
};

}  // namespace sandboxd::vm
