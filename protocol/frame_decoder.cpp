#include "protocol/frame_decoder.hpp"

#include <algorithm>
#include <cstring>

namespace sandboxd::protocol {

void FrameDecoder::feed(ByteSpan data) {
  if (skip_remaining_ > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(skip_remaining_, data.size()));
    skip_remaining_ -= n;
    data = data.subspan(n);
  }
  if (data.empty()) return;
  compact();
  buffer_.insert(buffer_.end(), data.begin(), data.end());
}

void FrameDecoder::compact() {
  // Move the unconsumed tail to the front once the consumed head dominates,
  // so the buffer stays about one frame long without shifting on every frame.
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
}

std::optional<DecodeResult> FrameDecoder::next() {
  ByteSpan pending = ByteSpan(buffer_).subspan(start_);
  if (pending.size() < 4) return std::nullopt;
  ByteReader header(pending);
  std::uint32_t length = header.u32();

  if (length > kMaxFrameBody) {
    // Drop what we hold of it now and the rest as it arrives.
    std::size_t held = pending.size() - 4;
    std::size_t drop = static_cast<std::size_t>(std::min<std::uint64_t>(length, held));
    start_ += 4 + drop;
    skip_remaining_ = length - drop;
    // Anything after the oversized frame in the buffer is the next frame;
    // skip_remaining_ is 0 in that case because drop == length.
    return DecodeResult{FrameError{ErrorCode::kFrameTooLarge, "frame larger than the protocol maximum"}};
  }
  if (pending.size() - 4 < length) return std::nullopt;

  ByteSpan body = pending.subspan(4, length);
  start_ += 4 + length;
  auto decoded = decode_body(body);
  if (!decoded) {
    ErrorCode code = ErrorCode::kMalformedFrame;
    if (body.size() >= 1 && body[0] != std::byte{kVersion}) code = ErrorCode::kUnsupportedVersion;
    else if (std::strcmp(decoded.error().reason, "unknown message type") == 0) code = ErrorCode::kUnknownType;
    return DecodeResult{FrameError{code, decoded.error().reason}};
  }
  return DecodeResult{std::move(decoded).value()};
}

}  // namespace sandboxd::protocol
