// Feeds arbitrary bytes to the frame decoder in arbitrary pieces and checks
// that whatever decodes re-encodes to a frame that decodes to the same thing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "protocol/codec.hpp"
#include "protocol/frame_decoder.hpp"

using namespace sandboxd;
using namespace sandboxd::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  // The first byte picks the piece size, so splits are explored too.
  std::size_t piece = size > 0 ? (static_cast<std::size_t>(data[0]) % 64) + 1 : 1;
  FrameDecoder decoder;
  for (std::size_t at = 0; at < input.size(); at += piece) {
    decoder.feed(input.subspan(at, std::min(piece, input.size() - at)));
    while (auto r = decoder.next()) {
      if (auto* m = std::get_if<Message>(&*r)) {
        Bytes again = encode(*m);
        auto back = decode_body(ByteSpan(again).subspan(4));
        if (!back || !(*back == *m)) std::abort();
      }
    }
    if (decoder.buffered() > kMaxFrameBody + 4 + 64) std::abort();
  }
  return 0;
}
