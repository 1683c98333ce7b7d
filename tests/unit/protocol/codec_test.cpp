#include <catch2/catch.hpp>

#include "protocol/codec.hpp"
#include "protocol/frame_decoder.hpp"

using namespace sandboxd;
using namespace sandboxd::protocol;

namespace {

Bytes bytes_of(std::string_view s) {
  ByteSpan b = as_bytes(s);
  return Bytes(b.begin(), b.end());
}

std::vector<Message> sample_messages() {
  return {
      Hello{"0.1.0", {"exec", "stdin"}},
      ExecStart{7, {"sh", "-c", "echo hi"}, {"PATH=/bin", "A=b"}, "/tmp", true},
      ExecStart{8, {"sh"}, {"TERM=xterm-256color"}, "", true, Terminal{132, 43}},
      ExecStart{9, {"id", "-u"}, {}, "/workspace", false, std::nullopt, "sandbox"},
      ExecStart{10, {"stat", "/etc"}, {}, "/", false, std::nullopt, "sandbox", Builtin::kFileTool},
      ExecStarted{7, 1234},
      Output{7, Stream::kStderr, bytes_of("oops\n")},
      OutputAck{7, 65536},
      Stdin{7, true, bytes_of("abc")},
      StdinAck{7, 3},
      Signal{7, 15},
      Exit{7, ExitKind::kSignaled, 9, 1000, 2000, 4096, ""},
      Exit{8, ExitKind::kStartFailed, 127, 0, 0, 0, "cannot run 'x': No such file or directory"},
      Error{0, ErrorCode::kMalformedFrame, "frame body is truncated"},
      Shutdown{},
      Ping{0xdeadbeefcafef00dULL},
      Pong{42},
      Resize{8, {kMaxTerminalSide, 1}},
  };
}

DecodeResult decode_one(const Bytes& frame) {
  FrameDecoder d;
  d.feed(frame);
  auto r = d.next();
  REQUIRE(r.has_value());
  return *r;
}

Bytes frame_with_body(std::initializer_list<std::uint8_t> body) {
  Bytes out;
  ByteWriter w(out);
  w.u32(static_cast<std::uint32_t>(body.size()));
  for (auto b : body) w.u8(b);
  return out;
}

}  // namespace

TEST_CASE("protocol: every message survives encode then decode") {
  for (const Message& m : sample_messages()) {
    Bytes frame = encode(m);
    auto decoded = decode_body(ByteSpan(frame).subspan(4));
    INFO(to_string(type_of(m)));
    REQUIRE(decoded.has_value());
    CHECK(*decoded == m);
  }
}

TEST_CASE("protocol: frame length prefix counts the bytes after it") {
  Bytes frame = encode(Ping{1});
  ByteReader r(frame);
  CHECK(r.u32() == frame.size() - 4);
  CHECK(r.u8() == kVersion);
  CHECK(r.u8() == static_cast<std::uint8_t>(MessageType::kPing));
}

TEST_CASE("protocol: decoder reassembles frames split at every byte boundary") {
  Bytes stream;
  for (const Message& m : sample_messages()) encode(m, stream);
  FrameDecoder d;
  std::vector<Message> got;
  for (std::byte b : stream) {
    d.feed(ByteSpan(&b, 1));
    while (auto r = d.next()) {
      REQUIRE(std::holds_alternative<Message>(*r));
      got.push_back(std::get<Message>(*r));
    }
  }
  CHECK(got == sample_messages());
  CHECK(d.buffered() == 0);
}

TEST_CASE("protocol: every truncation of every message is rejected, never misread") {
  for (const Message& m : sample_messages()) {
    Bytes frame = encode(m);
    ByteSpan body = ByteSpan(frame).subspan(4);
    for (std::size_t n = 0; n < body.size(); ++n) {
      auto r = decode_body(body.first(n));
      // Shutdown has an empty body: only cutting into version/type can fail.
      INFO(to_string(type_of(m)) << " cut at " << n);
      CHECK_FALSE(r.has_value());
    }
  }
}

TEST_CASE("protocol: trailing bytes after a message are rejected") {
  Bytes frame = encode(Ping{5});
  Bytes body(frame.begin() + 4, frame.end());
  body.push_back(std::byte{0});
  auto r = decode_body(body);
  REQUIRE_FALSE(r.has_value());
  CHECK(std::string_view(r.error().reason) == "frame has trailing bytes");
}

TEST_CASE("protocol: wrong version and unknown type are told apart") {
  auto bad_version = decode_one(frame_with_body({9, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0}));
  REQUIRE(std::holds_alternative<FrameError>(bad_version));
  CHECK(std::get<FrameError>(bad_version).code == ErrorCode::kUnsupportedVersion);

  auto bad_type = decode_one(frame_with_body({kVersion, 0x7f}));
  REQUIRE(std::holds_alternative<FrameError>(bad_type));
  CHECK(std::get<FrameError>(bad_type).code == ErrorCode::kUnknownType);

  auto zero_type = decode_one(frame_with_body({kVersion, 0x00}));
  REQUIRE(std::holds_alternative<FrameError>(zero_type));
  CHECK(std::get<FrameError>(zero_type).code == ErrorCode::kUnknownType);

  // The first type after the last one there is.
  auto next_type = decode_one(frame_with_body({kVersion, 0x0f}));
  REQUIRE(std::holds_alternative<FrameError>(next_type));
  CHECK(std::get<FrameError>(next_type).code == ErrorCode::kUnknownType);
}

TEST_CASE("protocol: a string length beyond the frame is rejected without allocating it") {
  // ExecStart with argv count 1 and a string claiming 4 GiB.
  auto r = decode_one(frame_with_body(
      {kVersion, 0x02, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 'x'}));
  REQUIRE(std::holds_alternative<FrameError>(r));
  CHECK(std::get<FrameError>(r).code == ErrorCode::kMalformedFrame);
}

TEST_CASE("protocol: a list count larger than the frame could hold is rejected") {
  auto r = decode_one(frame_with_body({kVersion, 0x02, 0, 0, 0, 1, 0x00, 0x10, 0x00, 0x00}));
  REQUIRE(std::holds_alternative<FrameError>(r));
  CHECK(std::get<FrameError>(r).code == ErrorCode::kMalformedFrame);
}

TEST_CASE("protocol: output chunks above the chunk limit are rejected") {
  Output big{1, Stream::kStdout, Bytes(kMaxChunk + 1, std::byte{'a'})};
  Bytes frame = encode(big);
  CHECK_FALSE(decode_body(ByteSpan(frame).subspan(4)).has_value());
  Output ok{1, Stream::kStdout, Bytes(kMaxChunk, std::byte{'a'})};
  frame = encode(ok);
  CHECK(decode_body(ByteSpan(frame).subspan(4)).has_value());
}

TEST_CASE("protocol: out-of-range enum values are rejected") {
  // Output with stream 3.
  auto r = decode_one(frame_with_body({kVersion, 0x04, 0, 0, 0, 1, 3, 0, 0, 0, 0}));
  CHECK(std::holds_alternative<FrameError>(r));
  // Signal 0 and 65.
  CHECK(std::holds_alternative<FrameError>(decode_one(frame_with_body({kVersion, 0x08, 0, 0, 0, 1, 0, 0, 0, 0}))));
  CHECK(std::holds_alternative<FrameError>(decode_one(frame_with_body({kVersion, 0x08, 0, 0, 0, 1, 0, 0, 0, 65}))));
  // Stdin eof flag 2.
  CHECK(std::holds_alternative<FrameError>(decode_one(frame_with_body({kVersion, 0x06, 0, 0, 0, 1, 2, 0, 0, 0, 0}))));
}

TEST_CASE("protocol: the terminal of an ExecStart is on the wire only when there is one") {
  ExecStart plain{3, {"true"}, {}, "", false};
  ExecStart with_pty = plain;
  with_pty.pty = Terminal{100, 30};
  Bytes a = encode(plain), b = encode(with_pty);
  // has_pty 0 is followed by the user and the builtin byte; has_pty 1 adds
  // cols then rows first.
  REQUIRE(b.size() == a.size() + 4);
  CHECK(a[a.size() - 6] == std::byte{0});
  CHECK(Bytes(b.end() - 10, b.end() - 5) ==
        Bytes{std::byte{1}, std::byte{0}, std::byte{100}, std::byte{0}, std::byte{30}});
  auto back = decode_body(ByteSpan(b).subspan(4));
  REQUIRE(back.has_value());
  CHECK(std::get<ExecStart>(*back).pty == Terminal{100, 30});
  back = decode_body(ByteSpan(a).subspan(4));
  REQUIRE(back.has_value());
  CHECK_FALSE(std::get<ExecStart>(*back).pty.has_value());
}

TEST_CASE("protocol: an ExecStart's user is a string of at most 256 bytes") {
  ExecStart m{3, {"true"}, {}, "", false, std::nullopt, std::string(kMaxUserName, 'u')};
  Bytes ok = encode(m);
  auto back = decode_body(ByteSpan(ok).subspan(4));
  REQUIRE(back.has_value());
  CHECK(std::get<ExecStart>(*back).user == m.user);
  m.user += 'u';
  Bytes long_user = encode(m);
  CHECK_FALSE(decode_body(ByteSpan(long_user).subspan(4)).has_value());
  // A frame of the previous shape, without the user, is truncated.
  Bytes old_shape(ok.begin() + 4, ok.end() - 5 - static_cast<std::ptrdiff_t>(kMaxUserName));
  CHECK_FALSE(decode_body(old_shape).has_value());
}

TEST_CASE("protocol: an ExecStart names no builtin or the file tool, nothing else") {
  ExecStart m{3, {"stat", "/"}, {}, "", false, std::nullopt, "", Builtin::kFileTool};
  Bytes ok = encode(m);
  auto back = decode_body(ByteSpan(ok).subspan(4));
  REQUIRE(back.has_value());
  CHECK(std::get<ExecStart>(*back).builtin == Builtin::kFileTool);
  ok.back() = std::byte{2};
  CHECK_FALSE(decode_body(ByteSpan(ok).subspan(4)).has_value());
  // Without the byte (the shape before builtins): truncated.
  Bytes old_shape(ok.begin() + 4, ok.end() - 1);
  CHECK_FALSE(decode_body(old_shape).has_value());
}

TEST_CASE("protocol: terminal sizes outside 1..4096 and bad pty flags are rejected") {
  auto exec_with = [](std::uint8_t has_pty, std::uint16_t cols, std::uint16_t rows) {
    // id 1, no argv, no env, empty cwd, stdin closed.
    Bytes body{std::byte{kVersion}, std::byte{0x02}};
    ByteWriter w(body);
    w.u32(1);
    w.u32(0);
    w.u32(0);
    w.u32(0);
    w.u8(0);
    w.u8(has_pty);
    if (has_pty) {
      w.u16(cols);
      w.u16(rows);
    }
    w.u32(0);  // user: root
    w.u8(0);   // no builtin
    return decode_body(body);
  };
  auto resize_with = [](std::uint16_t cols, std::uint16_t rows) {
    Bytes body{std::byte{kVersion}, std::byte{0x0e}};
    ByteWriter w(body);
    w.u32(1);
    w.u16(cols);
    w.u16(rows);
    return decode_body(body);
  };
  CHECK(exec_with(0, 0, 0).has_value());
  CHECK(exec_with(1, 1, 1).has_value());
  CHECK(exec_with(1, 4096, 4096).has_value());
  CHECK(resize_with(1, 4096).has_value());
  CHECK(resize_with(4096, 1).has_value());
  for (auto [cols, rows] : {std::pair<std::uint16_t, std::uint16_t>{0, 24}, {80, 0}, {4097, 24}, {80, 4097}, {0xffff, 0xffff}}) {
    INFO(cols << "x" << rows);
    auto e = exec_with(1, cols, rows);
    REQUIRE_FALSE(e.has_value());
    CHECK(std::string_view(e.error().reason) == "terminal size out of range");
    auto r = resize_with(cols, rows);
    REQUIRE_FALSE(r.has_value());
    CHECK(std::string_view(r.error().reason) == "terminal size out of range");
  }
  auto flag = exec_with(2, 80, 24);
  REQUIRE_FALSE(flag.has_value());
  CHECK(std::string_view(flag.error().reason) == "pty flag is neither 0 nor 1");
  // Through the frame decoder these are malformed frames, like any body that does not parse.
  auto framed = decode_one(frame_with_body({kVersion, 0x0e, 0, 0, 0, 1, 0, 0, 0, 24}));
  REQUIRE(std::holds_alternative<FrameError>(framed));
  CHECK(std::get<FrameError>(framed).code == ErrorCode::kMalformedFrame);
}

TEST_CASE("protocol: a resize is id, cols, rows") {
  Bytes frame = encode(Resize{0x01020304, {120, 40}});
  CHECK(frame == Bytes{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{10}, std::byte{kVersion}, std::byte{0x0e},
                       std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{0}, std::byte{120},
                       std::byte{0}, std::byte{40}});
  CHECK(std::string_view(to_string(MessageType::kResize)) == "resize");
  // A resize cut short, or with a byte too many, is not one.
  CHECK_FALSE(decode_body(ByteSpan(frame).subspan(4, frame.size() - 5)).has_value());
  Bytes longer(frame.begin() + 4, frame.end());
  longer.push_back(std::byte{0});
  CHECK_FALSE(decode_body(longer).has_value());
}

TEST_CASE("protocol: an oversized frame is reported once, skipped as it arrives, and the stream resyncs") {
  FrameDecoder d;
  Bytes header;
  ByteWriter w(header);
  std::uint32_t huge = kMaxFrameBody + 10;
  w.u32(huge);
  d.feed(header);
  auto r = d.next();
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<FrameError>(*r));
  CHECK(std::get<FrameError>(*r).code == ErrorCode::kFrameTooLarge);
  // Feed the oversized body in pieces: nothing is buffered, nothing decoded.
  Bytes chunk(64 * 1024, std::byte{0xab});
  std::size_t left = huge;
  while (left > 0) {
    std::size_t n = std::min(left, chunk.size());
    d.feed(ByteSpan(chunk).first(n));
    left -= n;
    CHECK(d.buffered() == 0);
    CHECK_FALSE(d.next().has_value());
  }
  d.feed(encode(Ping{77}));
  auto after = d.next();
  REQUIRE(after.has_value());
  REQUIRE(std::holds_alternative<Message>(*after));
  CHECK(std::get<Message>(*after) == Message{Ping{77}});
}

TEST_CASE("protocol: an oversized frame followed by a valid one in the same read") {
  Bytes stream;
  ByteWriter w(stream);
  w.u32(kMaxFrameBody + 1);
  stream.resize(stream.size() + kMaxFrameBody + 1, std::byte{1});
  encode(Pong{3}, stream);
  FrameDecoder d;
  d.feed(stream);
  auto first = d.next();
  REQUIRE(first.has_value());
  CHECK(std::holds_alternative<FrameError>(*first));
  auto second = d.next();
  REQUIRE(second.has_value());
  REQUIRE(std::holds_alternative<Message>(*second));
  CHECK(std::get<Message>(*second) == Message{Pong{3}});
}

TEST_CASE("protocol: a malformed frame does not break the frames after it") {
  Bytes stream = frame_with_body({kVersion, 0x0c, 1, 2});  // ping cut short
  encode(Ping{9}, stream);
  FrameDecoder d;
  d.feed(stream);
  auto bad = d.next();
  REQUIRE(bad.has_value());
  CHECK(std::holds_alternative<FrameError>(*bad));
  auto good = d.next();
  REQUIRE(good.has_value());
  REQUIRE(std::holds_alternative<Message>(*good));
  CHECK(std::get<Message>(*good) == Message{Ping{9}});
  CHECK_FALSE(d.next().has_value());
}
