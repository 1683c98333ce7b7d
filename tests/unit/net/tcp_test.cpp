#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/wire/checksum.hpp"
#include "daemon/net/wire/tcp.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

namespace {

const Ipv4Address kGuest{{10, 0, 2, 15}};
const Ipv4Address kServer{{93, 184, 216, 34}};

// A Linux SYN to port 443: MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
const Bytes kSyn =
    hex("b26e 01bb 6b8b4567 00000000 a002 faf0 086c 0000"
        "0204 05b4 0402 080a deadbeef 00000000 0103 0307");

// Sets the checksum a test's hand-made segment needs.
Bytes with_checksum(Bytes segment) {
  set_u16(segment, 16, 0);
  set_u16(segment, 16, ipv4_transport_checksum(kGuest, kServer, IpProtocol::kTcp, segment));
  return segment;
}

// A 20-byte header with data offset for `options`, then the options, then `payload`.
Bytes segment_with_options(std::string_view options_hex, std::string_view payload_hex = "") {
  Bytes options = hex(options_hex);
  Bytes s = hex("b26e 01bb 00000001 00000002 5010 ffff 0000 0000");
  set_u8(s, 12, static_cast<std::uint8_t>(((20 + options.size()) / 4) << 4));
  s.insert(s.end(), options.begin(), options.end());
  Bytes payload = hex(payload_hex);
  s.insert(s.end(), payload.begin(), payload.end());
  return with_checksum(s);
}

void expect_rejected(ByteSpan segment, const char* reason) {
  auto t = TcpRepr::parse(segment, kGuest, kServer);
  REQUIRE_FALSE(t.has_value());
  CHECK(std::string(t.error().reason) == reason);
}

}  // namespace

TEST_CASE("tcp: parses a real SYN with its options") {
  auto t = TcpRepr::parse(kSyn, kGuest, kServer);
  REQUIRE(t.has_value());
  CHECK(t->src_port == 45678);
  CHECK(t->dst_port == 443);
  CHECK(t->seq_number == 0x6b8b4567);
  CHECK(t->ack_number == 0);
  CHECK(t->flags == TcpFlags{.syn = true});
  CHECK(t->window == 64240);
  CHECK(t->urgent_pointer == 0);
  CHECK(t->options.mss == 1460);
  CHECK(t->options.sack_permitted);
  REQUIRE(t->options.timestamps.has_value());
  CHECK(t->options.timestamps->value == 0xdeadbeef);
  CHECK(t->options.timestamps->echo_reply == 0);
  CHECK(t->options.window_scale == 7);
  CHECK(t->options.sack_block_count == 0);
  CHECK(t->payload.empty());
  CHECK(t->sequence_length() == 1);
}

TEST_CASE("tcp: emit of the parsed SYN reproduces it byte for byte") {
  // The emit layout is the one Linux uses, so this SYN comes back unchanged.
  auto t = TcpRepr::parse(kSyn, kGuest, kServer);
  REQUIRE(t.has_value());
  CHECK(t->header_length() == 40);
  Bytes out;
  t->emit(out, kGuest, kServer);
  CHECK(to_hex(out) == to_hex(kSyn));
}

TEST_CASE("tcp: rejects a segment whose checksum is wrong") {
  Bytes s = kSyn;
  set_u16(s, 16, 0x086d);
  expect_rejected(s, "tcp: checksum is wrong");
  // Correct bytes under another pseudo-header do not verify either.
  CHECK_FALSE(TcpRepr::parse(kSyn, kGuest, Ipv4Address{{93, 184, 216, 35}}).has_value());
}

TEST_CASE("tcp: a data segment with every flag, timestamps and SACK blocks survives emit then parse") {
  const Bytes payload = hex("474554202f20485454502f312e310d0a");
  TcpRepr t;
  t.src_port = 443;
  t.dst_port = 45678;
  t.seq_number = 0xfffffff0;
  t.ack_number = 0x6b8b4568;
  t.flags = TcpFlags{true, false, false, true, true, true, true, true};
  t.window = 501;
  t.urgent_pointer = 3;
  t.options.timestamps = TcpTimestamps{100, 0xdeadbeef};
  t.options.sack_blocks[0] = {1000, 2000};
  t.options.sack_blocks[1] = {3000, 4000};
  t.options.sack_block_count = 2;
  t.payload = payload;
  Bytes out;
  t.emit(out, kServer, kGuest);
  CHECK(out.size() == t.header_length() + payload.size());
  CHECK(t.header_length() == 20 + 12 + 20);

  auto back = TcpRepr::parse(out, kServer, kGuest);
  REQUIRE(back.has_value());
  CHECK(back->src_port == 443);
  CHECK(back->dst_port == 45678);
  CHECK(back->seq_number == 0xfffffff0);
  CHECK(back->ack_number == 0x6b8b4568);
  CHECK(back->flags == t.flags);
  CHECK(back->window == 501);
  CHECK(back->urgent_pointer == 3);
  CHECK(back->options == t.options);
  CHECK(same_bytes(back->payload, payload));
  CHECK(back->sequence_length() == payload.size() + 1);  // FIN
}

TEST_CASE("tcp: a SYN-ACK with all SYN options survives emit then parse") {
  TcpRepr t;
  t.flags.syn = true;
  t.flags.ack = true;
  t.options.mss = 65480;
  t.options.window_scale = 14;
  t.options.sack_permitted = true;
  Bytes out;
  t.emit(out, kServer, kGuest);
  CHECK(out.size() == 20 + 4 + 4 + 4);
  auto back = TcpRepr::parse(out, kServer, kGuest);
  REQUIRE(back.has_value());
  CHECK(back->options == t.options);
  CHECK(back->flags == t.flags);
}

TEST_CASE("tcp: emit drops SACK blocks that do not fit the option space") {
  TcpRepr t;
  t.flags.ack = true;
  t.options.timestamps = TcpTimestamps{1, 2};
  for (std::uint32_t i = 0; i < 4; ++i) t.options.sack_blocks[i] = {i * 10, i * 10 + 5};
  t.options.sack_block_count = 4;
  Bytes out;
  t.emit(out, kServer, kGuest);
  CHECK(out.size() == 60);
  auto back = TcpRepr::parse(out, kServer, kGuest);
  REQUIRE(back.has_value());
  REQUIRE(back->options.sack_block_count == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(back->options.sack_blocks[i] == t.options.sack_blocks[i]);

  t.options.timestamps.reset();
  out.clear();
  t.emit(out, kServer, kGuest);
  back = TcpRepr::parse(out, kServer, kGuest);
  REQUIRE(back.has_value());
  CHECK(back->options.sack_block_count == 4);
}

TEST_CASE("tcp: the payload starts after the options") {
  const Bytes s = segment_with_options("0101 0402", "616263");  // parse returns views into it
  auto t = TcpRepr::parse(s, kGuest, kServer);
  REQUIRE(t.has_value());
  CHECK(t->options.sack_permitted);
  CHECK(to_hex(t->payload) == "616263");
}

TEST_CASE("tcp: unknown options are skipped by their length") {
  // Kind 30 (multipath) with 6 bytes, kind 34 (fast open) with 2, then MSS.
  auto t = TcpRepr::parse(segment_with_options("1e06 00000000 2202 0204 0218"), kGuest, kServer);
  REQUIRE(t.has_value());
  CHECK(t->options.mss == 536);
}

TEST_CASE("tcp: end of option list ends parsing; what follows is padding") {
  auto t = TcpRepr::parse(segment_with_options("0204 05b4 00 ff ff ff"), kGuest, kServer);
  REQUIRE(t.has_value());
  CHECK(t->options.mss == 1460);
}

TEST_CASE("tcp: a window scale above 14 is read as 14") {
  auto t = TcpRepr::parse(segment_with_options("0103 0320"), kGuest, kServer);
  REQUIRE(t.has_value());
  CHECK(t->options.window_scale == 14);
}

TEST_CASE("tcp: SACK blocks are read in order") {
  auto t = TcpRepr::parse(segment_with_options("0101 050a 00000064 000000c8"), kGuest, kServer);
  REQUIRE(t.has_value());
  REQUIRE(t->options.sack_block_count == 1);
  CHECK(t->options.sack_blocks[0] == TcpSackBlock{100, 200});
}

TEST_CASE("tcp: rejects malformed option lengths with a reason") {
  struct Case {
    const char* options;
    const char* reason;
  };
  for (const Case& c : {
           Case{"0101 1e00 0000 0000", "tcp: option length is below 2"},
           Case{"0101 1e01 0000 0000", "tcp: option length is below 2"},
           Case{"0101 0101 0101 0102", "tcp: option has no length byte"},
           Case{"0101 0101 0101 1e04", "tcp: option runs past the header"},
           Case{"0203 0501", "tcp: MSS option length is not 4"},
           Case{"0205 05b4 0000 0000", "tcp: MSS option length is not 4"},
           Case{"0304 0700", "tcp: window scale option length is not 3"},
           Case{"0403 0000", "tcp: SACK-permitted option length is not 2"},
           Case{"0502 0000", "tcp: SACK option length is not 2 + 8n"},
           Case{"050b 00000001 00000002 0000 0000 0000", "tcp: SACK option length is not 2 + 8n"},
           Case{"0809 00000001 00000002 0000", "tcp: timestamps option length is not 10"},
           Case{"0101 0101 0232 0000", "tcp: option runs past the header"},
       }) {
    INFO(c.options);
    expect_rejected(segment_with_options(c.options), c.reason);
  }
}

TEST_CASE("tcp: rejects a bad data offset") {
  Bytes s = kSyn;
  set_u8(s, 12, 0x40);
  expect_rejected(with_checksum(s), "tcp: data offset is below 5");
  s = kSyn;
  set_u8(s, 12, 0xb0);  // 44 bytes of header in a 40-byte segment
  expect_rejected(with_checksum(s), "tcp: header is longer than the segment");
}

TEST_CASE("tcp: rejects a segment truncated at every length") {
  for (std::size_t n = 0; n < kSyn.size(); ++n) {
    INFO("length " << n);
    expect_rejected(ByteSpan(kSyn).first(n),
                    n < 20 ? "tcp: segment is shorter than its header" : "tcp: header is longer than the segment");
  }
}
