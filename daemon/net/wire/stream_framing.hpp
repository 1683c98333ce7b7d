// QEMU's stream netdev framing: each Ethernet frame is preceded by its length
// as a 4-byte big-endian number. That is all there is to the format; the
// daemon and QEMU exchange frames this way over a socketpair.
//
// StreamFrameDecoder turns arbitrary chunks of that byte stream back into
// frames. The length comes from the other side, which is hostile until
// proven otherwise: a frame longer than the limit is skipped as its bytes
// arrive — never buffered — and counted, and the stream goes on with the
// next frame. A zero length is an empty frame, handed on (the layers above
// drop it as malformed). The decoder holds at most one frame's bytes.
//
// FrameBatch is the other direction: frames written back to back, each with
// its length in front, ready for a single write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "protocol/bytes.hpp"

namespace sandboxd::net::wire {

class StreamFrameDecoder {
 public:
  // 65535 bytes of IPv4 packet behind a 14-byte Ethernet header is the
  // largest frame a 65520-MTU link can carry, with room to spare.
  static constexpr std::size_t kDefaultMaxFrame = 65536 + 14;

  explicit StreamFrameDecoder(std::size_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}

  // Feeds bytes; calls `on_frame` for each complete frame, in order. The span
  // passed is valid only during the call.
  void feed(ByteSpan data, const std::function<void(ByteSpan frame)>& on_frame);

  std::uint64_t oversized_frames() const { return oversized_frames_; }
  // Bytes held for an incomplete frame (or length) right now.
  std::size_t buffered() const { return frame_.size() + header_fill_; }

 private:
  std::size_t max_frame_;
  std::uint8_t header_[4]{};
  std::size_t header_fill_ = 0;
  bool in_frame_ = false;
  std::size_t frame_length_ = 0;
  std::size_t skip_remaining_ = 0;  // of an oversized frame
  Bytes frame_;
  std::uint64_t oversized_frames_ = 0;
};

class FrameBatch {
 public:
  // Starts a frame: returns the buffer to append its bytes to. Call
  // end_frame() when the frame is complete.
  Bytes& begin_frame();
  void end_frame();

  // Appends a whole frame.
  void add(ByteSpan frame);

  bool empty() const { return bytes_.empty(); }
  std::size_t frame_count() const { return frames_; }
  // The framed bytes, ready to write.
  const Bytes& bytes() const { return bytes_; }
  // Hands the framed bytes over and leaves the batch empty.
  Bytes take();
  void clear();

  // Calls `fn` with each frame (without its length) in order.
  void for_each_frame(const std::function<void(ByteSpan frame)>& fn) const;

 private:
  Bytes bytes_;
  std::size_t open_at_ = 0;
  std::size_t frames_ = 0;
};

}  // namespace sandboxd::net::wire
