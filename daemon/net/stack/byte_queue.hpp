// A FIFO of bytes in one contiguous block: appended at the back, consumed at
// the front.
//
// The TCP connection keeps both of its buffers in these. Contiguity is the
// point: a segment's payload is always a single span into the queue, so
// emitting a segment copies nothing here. The consumed front is not freed on
// every consume; instead the live bytes are moved down to the start of the
// block when an append would otherwise have to grow it. Each byte is thus
// moved at most about once per time it passes through (amortised O(1)), and the
// block never grows beyond about twice the most the queue ever held at once —
// the owner bounds that by never appending past its own limit.
#pragma once

#include <cstddef>

#include "protocol/bytes.hpp"

namespace sandboxd::net {

class ByteQueue {
 public:
  std::size_t size() const { return bytes_.size() - head_; }
  bool empty() const { return size() == 0; }

  // All queued bytes, oldest first. Valid until the next append or consume.
  ByteSpan view() const { return ByteSpan(bytes_).subspan(head_); }
  // `length` bytes starting `offset` bytes after the front, clamped to what is there.
  ByteSpan view(std::size_t offset, std::size_t length) const;

  void append(ByteSpan data);
  // Drops up to `n` bytes from the front.
  void consume(std::size_t n);

 private:
  Bytes bytes_;
  std::size_t head_ = 0;  // bytes_[0, head_) were consumed
};

}  // namespace sandboxd::net
