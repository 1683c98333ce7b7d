#include "daemon/net/wire/stream_framing.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace sandboxd::net::wire {
namespace {

Bytes framed(std::initializer_list<std::string> frames) {
  FrameBatch batch;
  for (const auto& f : frames) batch.add(as_bytes(f));
  return batch.take();
}

std::vector<std::string> decode_in_pieces(StreamFrameDecoder& decoder, ByteSpan stream, std::size_t piece) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    decoder.feed(stream.subspan(at, std::min(piece, stream.size() - at)),
                 [&](ByteSpan frame) { out.emplace_back(as_chars(frame)); });
  }
  return out;
}

}  // namespace

TEST_CASE("stream framing: a batch is each frame behind its 4-byte big-endian length") {
  Bytes bytes = framed({"abc", ""});
  REQUIRE(bytes.size() == 4 + 3 + 4);
  CHECK(bytes[3] == std::byte{3});
  CHECK(bytes[0] == std::byte{0});
}

TEST_CASE("stream framing: frames come back whole however the stream is cut") {
  Bytes stream = framed({"first frame", "x", std::string(65000, 'y'), "last"});
  for (std::size_t piece : {1u, 2u, 3u, 5u, 4096u, 1000000u}) {
    StreamFrameDecoder decoder;
    auto frames = decode_in_pieces(decoder, stream, piece);
    REQUIRE(frames.size() == 4);
    CHECK(frames[0] == "first frame");
    CHECK(frames[1] == "x");
    CHECK(frames[2].size() == 65000);
    CHECK(frames[3] == "last");
    CHECK(decoder.buffered() == 0);
  }
}

TEST_CASE("stream framing: an oversized frame is skipped without being buffered, and the stream goes on") {
  StreamFrameDecoder decoder(1000);
  FrameBatch batch;
  batch.add(as_bytes("before"));
  batch.add(Bytes(5000, std::byte{1}));
  batch.add(as_bytes("after"));
  Bytes stream = batch.take();
  std::vector<std::string> frames;
  std::size_t most_buffered = 0;
  for (std::size_t at = 0; at < stream.size(); at += 100) {
    decoder.feed(ByteSpan(stream).subspan(at, std::min<std::size_t>(100, stream.size() - at)),
                 [&](ByteSpan f) { frames.emplace_back(as_chars(f)); });
    most_buffered = std::max(most_buffered, decoder.buffered());
  }
  CHECK(frames == std::vector<std::string>{"before", "after"});
  CHECK(decoder.oversized_frames() == 1);
  CHECK(most_buffered <= 1000);
}

TEST_CASE("stream framing: a 4 GiB length announces a frame that is skipped, not allocated") {
  StreamFrameDecoder decoder;
  Bytes stream = {std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{1}, std::byte{2}};
  int frames = 0;
  decoder.feed(stream, [&](ByteSpan) { ++frames; });
  CHECK(frames == 0);
  CHECK(decoder.oversized_frames() == 1);
  CHECK(decoder.buffered() == 0);
}

TEST_CASE("stream framing: for_each_frame walks a batch") {
  FrameBatch batch;
  Bytes& out = batch.begin_frame();
  out.push_back(std::byte{9});
  batch.end_frame();
  batch.add(as_bytes("zz"));
  std::vector<std::string> seen;
  batch.for_each_frame([&](ByteSpan f) { seen.emplace_back(as_chars(f)); });
  CHECK(seen == std::vector<std::string>{"\x09", "zz"});
  CHECK(batch.frame_count() == 2);
}

}  // namespace sandboxd::net::wire
