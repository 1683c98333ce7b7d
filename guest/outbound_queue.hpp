// The frames waiting to go to the host. The ports are non-blocking, so a
// write may take part of a frame; the rest stays here until the port is
// writable again. The agent watches size() to stop reading process output
// while the host is slow, and the mounts bridge to stop taking FUSE
// requests, so this queue stays bounded. One queue holds the frames of one
// port: control messages, or the mounts protocol's frames.
#pragma once

#include <cstddef>

#include "protocol/fs_messages.hpp"
#include "protocol/messages.hpp"

namespace sandboxd::guest {

class OutboundQueue {
 public:
  enum class Flush {
    kDrained,  // everything was written
    kBlocked,  // the fd would block; wait for EPOLLOUT
    kFailed,   // the fd is gone (errno says why); what was queued stays
  };

  void push(const protocol::Message& m);
  void push(const protocol::fs::Frame& frame);
  // Writes as much as `fd` takes without blocking; `wrote`, when given, is
  // set if any byte went.
  Flush flush(int fd, bool* wrote = nullptr);
  // Drops what is queued (the peer that would read it is gone).
  void clear() {
    buffer_.clear();
    offset_ = 0;
  }

  std::size_t size() const { return buffer_.size() - offset_; }
  bool empty() const { return size() == 0; }

 private:
  Bytes buffer_;
  std::size_t offset_ = 0;  // first byte not yet written
};

}  // namespace sandboxd::guest
