// The mounts protocol as a hostile peer could send it: the input is tried as
// a frame body, as a reply body of every op, and as a byte stream split into
// pieces. Decoding never reads out of bounds, and whatever decodes encodes
// back to bytes that decode to the same value.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "protocol/fs_codec.hpp"

using namespace sandboxd;
using namespace sandboxd::protocol::fs;

namespace {

void check_reply_bodies(ByteSpan input) {
  for (std::uint8_t op = 1; op <= kMaxOp; ++op) {
    auto body = decode_reply_body(static_cast<Op>(op), input);
    if (!body) continue;
    Bytes again = encode_reply_body(static_cast<Op>(op), *body);
    auto back = decode_reply_body(static_cast<Op>(op), again);
    if (!back || !(*back == *body)) __builtin_trap();
  }
}

void check_frame(ByteSpan body) {
  auto frame = decode_body(body);
  if (!frame) return;
  Bytes again = encode(*frame);
  auto back = decode_body(ByteSpan(again).subspan(4));
  if (!back || !(*back == *frame)) __builtin_trap();
  if (const auto* reply = std::get_if<Reply>(&*frame)) check_reply_bodies(reply->body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  check_frame(input);
  check_reply_bodies(input);

  // The first byte picks the piece size, so splits are explored too.
  std::size_t piece = size > 0 ? (static_cast<std::size_t>(data[0]) % 64) + 1 : 1;
  FrameSplitter splitter;
  for (std::size_t at = 0; at < input.size(); at += piece) {
    splitter.feed(input.subspan(at, std::min(piece, input.size() - at)));
    while (auto body = splitter.next()) {
      if (body->size() < 2 || body->size() > kMaxFrameBody) __builtin_trap();
      check_frame(*body);
    }
    if (splitter.failed() && splitter.buffered() != 0) __builtin_trap();
    if (splitter.buffered() > kMaxFrameBody + 4 + 64) __builtin_trap();
  }
  return 0;
}
