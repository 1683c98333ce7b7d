#include "daemon/net/wire/stream_framing.hpp"

#include <algorithm>
#include <cassert>

namespace sandboxd::net::wire {

void StreamFrameDecoder::feed(ByteSpan data, const std::function<void(ByteSpan)>& on_frame) {
  while (!data.empty()) {
    if (skip_remaining_ > 0) {
      std::size_t n = std::min(skip_remaining_, data.size());
      skip_remaining_ -= n;
      data = data.subspan(n);
      continue;
    }
    if (!in_frame_) {
      std::size_t n = std::min<std::size_t>(4 - header_fill_, data.size());
      for (std::size_t i = 0; i < n; ++i) header_[header_fill_ + i] = static_cast<std::uint8_t>(data[i]);
      header_fill_ += n;
      data = data.subspan(n);
      if (header_fill_ < 4) return;
      header_fill_ = 0;
      const std::size_t length = (std::size_t{header_[0]} << 24) | (std::size_t{header_[1]} << 16) |
                                 (std::size_t{header_[2]} << 8) | std::size_t{header_[3]};
      if (length > max_frame_) {
        ++oversized_frames_;
        skip_remaining_ = length;
        continue;
      }
      frame_length_ = length;
      in_frame_ = true;
      // A whole frame already in this chunk is handed on without a copy.
      if (data.size() >= length) {
        in_frame_ = false;
        on_frame(data.first(length));
        data = data.subspan(length);
        continue;
      }
      frame_.clear();
      frame_.reserve(length);
    }
    std::size_t n = std::min(frame_length_ - frame_.size(), data.size());
    frame_.insert(frame_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    data = data.subspan(n);
    if (frame_.size() == frame_length_) {
      in_frame_ = false;
      on_frame(frame_);
      frame_.clear();
    }
  }
}

Bytes& FrameBatch::begin_frame() {
  open_at_ = bytes_.size();
  bytes_.resize(bytes_.size() + 4);
  return bytes_;
}

void FrameBatch::end_frame() {
  const std::size_t length = bytes_.size() - open_at_ - 4;
  assert(length <= 0xffffffffu);
  ByteWriter(bytes_).patch_u32(open_at_, static_cast<std::uint32_t>(length));
  ++frames_;
}

void FrameBatch::add(ByteSpan frame) {
  Bytes& out = begin_frame();
  out.insert(out.end(), frame.begin(), frame.end());
  end_frame();
}

Bytes FrameBatch::take() {
  Bytes out = std::move(bytes_);
  bytes_ = Bytes();
  frames_ = 0;
  return out;
}

void FrameBatch::clear() {
  bytes_.clear();
  frames_ = 0;
}

void FrameBatch::for_each_frame(const std::function<void(ByteSpan)>& fn) const {
  ByteReader r(bytes_);
  while (r.remaining() >= 4) {
    std::uint32_t length = r.u32();
    ByteSpan frame = r.take(length);
    if (!r.ok()) return;
    fn(frame);
  }
}

}  // namespace sandboxd::net::wire
