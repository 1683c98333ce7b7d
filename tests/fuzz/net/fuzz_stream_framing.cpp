// QEMU stream framing: the decoder never holds more than one frame's bytes,
// and a stream of well-framed frames cut anywhere decodes to the same frames.
#include "daemon/net/wire/stream_framing.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteSpan in = as_span(data, size);
  if (in.empty()) return 0;
  const std::size_t max_frame = 1 + static_cast<std::size_t>(data[0]) * 16;
  const std::size_t piece = 1 + data[0] % 7;
  in = in.subspan(1);

  // Hostile stream: bounded memory, frames within the limit.
  StreamFrameDecoder hostile(max_frame);
  for (std::size_t at = 0; at < in.size(); at += piece) {
    hostile.feed(in.subspan(at, std::min(piece, in.size() - at)), [&](ByteSpan f) { require(f.size() <= max_frame); });
    require(hostile.buffered() <= max_frame + 4);
  }

  // The input cut into frames by its own bytes, framed, then decoded in pieces.
  FrameBatch batch;
  std::vector<Bytes> frames;
  for (std::size_t at = 0; at < in.size();) {
    std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(in[at]) + 1, in.size() - at);
    frames.emplace_back(in.begin() + static_cast<std::ptrdiff_t>(at), in.begin() + static_cast<std::ptrdiff_t>(at + n));
    batch.add(frames.back());
    at += n;
  }
  StreamFrameDecoder decoder;
  std::size_t index = 0;
  const Bytes& stream = batch.bytes();
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    decoder.feed(ByteSpan(stream).subspan(at, std::min(piece, stream.size() - at)), [&](ByteSpan f) {
      require(index < frames.size() && same_bytes(f, frames[index]));
      ++index;
    });
  }
  require(index == frames.size());
  return 0;
}
