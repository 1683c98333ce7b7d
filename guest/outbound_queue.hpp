// The frames waiting to go to the host. The control port is non-blocking, so
// a write may take part of a frame; the rest stays here until the port is
// writable again. The agent watches size() to stop reading process output
// while the host is slow, so this queue stays bounded.
#pragma once

#include <cstddef>

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
  // Writes as much as `fd` takes without blocking.
  Flush flush(int fd);

  std::size_t size() const { return buffer_.size() - offset_; }
  bool empty() const { return size() == 0; }

 private:
  Bytes buffer_;
  std::size_t offset_ = 0;  // first byte not yet written
};

}  // namespace sandboxd::guest
