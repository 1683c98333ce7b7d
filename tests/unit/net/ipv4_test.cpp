#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/wire/checksum.hpp"
#include "daemon/net/wire/ipv4.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

namespace {

// A ping from 10.0.2.15 to 10.0.2.2: 20-byte header, DF set, 48 bytes of ICMP.
const Bytes kPing =
    hex("4500 0044 1c46 4000 4001 0663 0a00020f 0a000202"
        "0800 2f11 0a1b 0001 1011121314151617 18191a1b1c1d1e1f 2021222324252627"
        "28292a2b2c2d2e2f 3031323334353637");

void expect_rejected(ByteSpan packet, const char* reason) {
  auto ip = Ipv4Repr::parse(packet);
  REQUIRE_FALSE(ip.has_value());
  CHECK(std::string(ip.error().reason) == reason);
}

// Recomputes the header checksum after a test edits the header.
void fix_checksum(Bytes& p) {
  const std::size_t ihl = (static_cast<std::size_t>(p[0]) & 0x0f) * 4;
  set_u16(p, 10, 0);
  set_u16(p, 10, internet_checksum(ByteSpan(p).first(ihl)));
}

}  // namespace

TEST_CASE("ipv4: parses the header of a real ping") {
  auto ip = Ipv4Repr::parse(kPing);
  REQUIRE(ip.has_value());
  CHECK(ip->src == Ipv4Address{{10, 0, 2, 15}});
  CHECK(ip->dst == Ipv4Address{{10, 0, 2, 2}});
  CHECK(ip->protocol == IpProtocol::kIcmp);
  CHECK(ip->ttl == 64);
  CHECK(ip->tos == 0);
  CHECK(ip->identification == 0x1c46);
  CHECK(ip->dont_fragment);
  CHECK_FALSE(ip->more_fragments);
  CHECK(ip->fragment_offset == 0);
  CHECK_FALSE(ip->is_fragment());
  CHECK(ip->options.empty());
  CHECK(ip->payload.size() == 48);
  CHECK(ip->payload.data() == kPing.data() + 20);
}

TEST_CASE("ipv4: parses the textbook header whose checksum is b861") {
  Bytes p = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");
  p.resize(0x73);
  auto ip = Ipv4Repr::parse(p);
  REQUIRE(ip.has_value());
  CHECK(ip->protocol == IpProtocol::kUdp);
  CHECK(ip->src.to_string() == "192.168.0.1");
  CHECK(ip->dst.to_string() == "192.168.0.199");
  CHECK(ip->payload.size() == 0x73 - 20);
}

TEST_CASE("ipv4: ignores bytes beyond the total length, such as Ethernet padding") {
  Bytes padded = kPing;
  padded.insert(padded.end(), 6, std::byte{0});
  auto ip = Ipv4Repr::parse(padded);
  REQUIRE(ip.has_value());
  CHECK(ip->payload.size() == 48);
}

TEST_CASE("ipv4: rejects a header whose checksum is wrong") {
  Bytes p = kPing;
  set_u16(p, 10, 0x0664);
  expect_rejected(p, "ipv4: header checksum is wrong");
  p = kPing;
  set_u8(p, 8, 63);  // TTL changed, checksum not updated
  expect_rejected(p, "ipv4: header checksum is wrong");
}

TEST_CASE("ipv4: skips options by the header length and exposes them raw") {
  // IHL 6: one word of options (router alert, RFC 2113).
  Bytes p = hex("4600 0020 0001 0000 4011 0000 0a00020f 0a000202 94040000 01020304 05060708");
  fix_checksum(p);
  auto ip = Ipv4Repr::parse(p);
  REQUIRE(ip.has_value());
  CHECK(to_hex(ip->options) == "94040000");
  CHECK(to_hex(ip->payload) == "0102030405060708");
}

TEST_CASE("ipv4: reports fragment fields so the stack can drop fragments") {
  Bytes first = kPing;
  set_u16(first, 6, 0x2000);  // MF, offset 0
  fix_checksum(first);
  auto a = Ipv4Repr::parse(first);
  REQUIRE(a.has_value());
  CHECK(a->more_fragments);
  CHECK_FALSE(a->dont_fragment);
  CHECK(a->fragment_offset == 0);
  CHECK(a->is_fragment());

  Bytes last = kPing;
  set_u16(last, 6, 185);  // no MF, offset 185 * 8
  fix_checksum(last);
  auto b = Ipv4Repr::parse(last);
  REQUIRE(b.has_value());
  CHECK_FALSE(b->more_fragments);
  CHECK(b->fragment_offset == 1480);
  CHECK(b->is_fragment());
}

TEST_CASE("ipv4: rejects a packet truncated at every length") {
  for (std::size_t n = 0; n < kPing.size(); ++n) {
    INFO("length " << n);
    auto ip = Ipv4Repr::parse(ByteSpan(kPing).first(n));
    REQUIRE_FALSE(ip.has_value());
    CHECK(std::string(ip.error().reason) ==
          (n < 20 ? "ipv4: packet is shorter than its header" : "ipv4: total length exceeds the packet"));
  }
}

TEST_CASE("ipv4: rejects bad versions and lengths with a reason") {
  Bytes p = kPing;
  set_u8(p, 0, 0x65);
  expect_rejected(p, "ipv4: version is not 4");

  p = kPing;
  set_u8(p, 0, 0x44);
  fix_checksum(p);
  expect_rejected(p, "ipv4: header length field is below 5");

  p = kPing;
  set_u8(p, 0, 0x4f);  // 60-byte header in a 20-byte one's place: the checksum no longer matters
  expect_rejected(ByteSpan(p).first(40), "ipv4: header is longer than the packet");

  p = kPing;
  set_u16(p, 2, 19);
  fix_checksum(p);
  expect_rejected(p, "ipv4: total length is shorter than the header");

  p = kPing;
  set_u16(p, 2, static_cast<std::uint16_t>(kPing.size() + 1));
  fix_checksum(p);
  expect_rejected(p, "ipv4: total length exceeds the packet");
}

TEST_CASE("ipv4: emit computes a checksum that parse accepts and keeps every field") {
  const Bytes payload = hex("deadbeef");
  Ipv4Repr ip;
  ip.src = Ipv4Address{{10, 0, 2, 2}};
  ip.dst = Ipv4Address{{10, 0, 2, 15}};
  ip.protocol = IpProtocol::kUdp;
  ip.ttl = 17;
  ip.tos = 0xb8;
  ip.identification = 0xabcd;
  ip.dont_fragment = true;
  ip.more_fragments = true;
  ip.fragment_offset = 8 * 0x1fff;
  ip.payload = payload;
  Bytes out;
  ip.emit(out);
  REQUIRE(out.size() == 24);
  CHECK(internet_checksum(ByteSpan(out).first(20)) == 0);

  auto back = Ipv4Repr::parse(out);
  REQUIRE(back.has_value());
  CHECK(back->src == ip.src);
  CHECK(back->dst == ip.dst);
  CHECK(back->protocol == ip.protocol);
  CHECK(back->ttl == 17);
  CHECK(back->tos == 0xb8);
  CHECK(back->identification == 0xabcd);
  CHECK(back->dont_fragment);
  CHECK(back->more_fragments);
  CHECK(back->fragment_offset == 8 * 0x1fff);
  CHECK(to_hex(back->payload) == "deadbeef");
}

TEST_CASE("ipv4: emit of a parsed packet reproduces it byte for byte") {
  auto ip = Ipv4Repr::parse(kPing);
  REQUIRE(ip.has_value());
  Bytes out;
  ip->emit(out);
  CHECK(to_hex(out) == to_hex(kPing));
}

TEST_CASE("ipv4: emit_header leaves room for a payload written in place") {
  auto ip = Ipv4Repr::parse(kPing);
  REQUIRE(ip.has_value());
  Bytes out;
  ip->emit_header(out, ip->payload.size());
  CHECK(out.size() == 20);
  out.insert(out.end(), ip->payload.begin(), ip->payload.end());
  CHECK(to_hex(out) == to_hex(kPing));
}
