#include "daemon/net/stack/byte_queue.hpp"

#include <algorithm>

namespace sandboxd::net {

ByteSpan ByteQueue::view(std::size_t offset, std::size_t length) const {
  const ByteSpan all = view();
  if (offset >= all.size()) return {};
  return all.subspan(offset, std::min(length, all.size() - offset));
}

void ByteQueue::append(ByteSpan data) {
  if (data.empty()) return;
  // Reuse the consumed front before letting the vector reallocate.
  if (head_ > 0 && bytes_.size() + data.size() > bytes_.capacity()) {
    bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  bytes_.insert(bytes_.end(), data.begin(), data.end());
}

void ByteQueue::consume(std::size_t n) {
  head_ += std::min(n, size());
  if (head_ == bytes_.size()) {
    // Empty again: start over at the front, keeping the allocation.
    bytes_.clear();
    head_ = 0;
  }
}

}  // namespace sandboxd::net
