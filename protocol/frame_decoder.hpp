// Splits a byte stream (the virtio-serial port, or its host-side socket) into
// frames and decodes them.
//
// The decoder holds at most one frame's worth of bytes. A malformed body is
// reported and the stream goes on, since the length prefix still marks where
// the next frame starts. A declared length above kMaxFrameBody is reported
// once and the declared number of bytes is then skipped as it arrives, without
// being stored, so a hostile peer cannot make the reader allocate.
#pragma once

#include <cstddef>
#include <optional>
#include <variant>

#include "protocol/codec.hpp"

namespace sandboxd::protocol {

struct FrameError {
  ErrorCode code;
  const char* reason;
};

using DecodeResult = std::variant<Message, FrameError>;

class FrameDecoder {
 public:
  // Adds bytes read from the stream.
  void feed(ByteSpan data);
  // The next complete frame's outcome, or nullopt when more bytes are needed.
  std::optional<DecodeResult> next();

  // Bytes held waiting for the rest of a frame.
  std::size_t buffered() const { return buffer_.size() - start_; }

 private:
  void compact();

  Bytes buffer_;
  std::size_t start_ = 0;          // first unconsumed byte of buffer_
  std::uint64_t skip_remaining_ = 0;  // bytes of an oversized frame still to drop
};

}  // namespace sandboxd::protocol
