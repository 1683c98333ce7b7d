#include "guest/outbound_queue.hpp"

#include <unistd.h>

#include <cerrno>

#include "protocol/codec.hpp"
#include "protocol/fs_codec.hpp"

namespace sandboxd::guest {

void OutboundQueue::push(const protocol::Message& m) { protocol::encode(m, buffer_); }
void OutboundQueue::push(const protocol::fs::Frame& frame) { protocol::fs::encode(frame, buffer_); }

OutboundQueue::Flush OutboundQueue::flush(int fd, bool* wrote) {
  Flush result = Flush::kDrained;
  while (offset_ < buffer_.size()) {
    ssize_t n = ::write(fd, buffer_.data() + offset_, buffer_.size() - offset_);
    if (n > 0) {
      offset_ += static_cast<std::size_t>(n);
      if (wrote) *wrote = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      result = Flush::kBlocked;
      break;
    } else {
      result = Flush::kFailed;
      break;
    }
  }
  if (offset_ == buffer_.size()) {
    clear();
  } else if (offset_ > (1u << 20) && offset_ > buffer_.size() / 2) {
    // Drop the written front now and then rather than on every short write.
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(offset_));
    offset_ = 0;
  }
  return result;
}

}  // namespace sandboxd::guest
