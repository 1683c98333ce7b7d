#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/wire/checksum.hpp"
#include "daemon/net/wire/udp.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

namespace {

const Ipv4Address kGuest{{10, 0, 2, 15}};
const Ipv4Address kResolver{{10, 0, 2, 3}};

// A DNS query for example.com from port 40000, as a guest sends it.
const Bytes kDnsQuery =
    hex("9c40 0035 0025 697b"
        "1234 0100 0001 0000 0000 0000 076578616d706c65 03636f6d 00 0001 0001");

void expect_rejected(ByteSpan datagram, const char* reason) {
  auto u = UdpRepr::parse(datagram, kGuest, kResolver);
  REQUIRE_FALSE(u.has_value());
  CHECK(std::string(u.error().reason) == reason);
}

}  // namespace

TEST_CASE("udp: parses a real DNS query and verifies its checksum") {
  auto u = UdpRepr::parse(kDnsQuery, kGuest, kResolver);
  REQUIRE(u.has_value());
  CHECK(u->src_port == 40000);
  CHECK(u->dst_port == 53);
  CHECK(u->payload.size() == 29);
  CHECK(u->payload.data() == kDnsQuery.data() + 8);
}

TEST_CASE("udp: rejects a datagram whose checksum is wrong") {
  Bytes d = kDnsQuery;
  set_u16(d, 6, 0x697c);
  expect_rejected(d, "udp: checksum is wrong");
  d = kDnsQuery;
  set_u8(d, 20, 0x08);  // one payload byte changed
  expect_rejected(d, "udp: checksum is wrong");
  // The same datagram between other hosts does not verify either.
  auto other = UdpRepr::parse(kDnsQuery, kGuest, Ipv4Address{{10, 0, 2, 4}});
  CHECK_FALSE(other.has_value());
}

TEST_CASE("udp: accepts a zero checksum as none computed") {
  Bytes d = kDnsQuery;
  set_u16(d, 6, 0);
  set_u8(d, 20, 0x08);
  auto u = UdpRepr::parse(d, kGuest, kResolver);
  REQUIRE(u.has_value());
  CHECK(u->payload.size() == 29);
}

TEST_CASE("udp: ignores bytes of the IP payload beyond the UDP length") {
  Bytes d = kDnsQuery;
  d.push_back(std::byte{0xee});
  auto u = UdpRepr::parse(d, kGuest, kResolver);
  REQUIRE(u.has_value());
  CHECK(u->payload.size() == 29);
}

TEST_CASE("udp: rejects bad length fields") {
  Bytes d = kDnsQuery;
  set_u16(d, 4, 7);
  expect_rejected(d, "udp: length field is shorter than the header");
  set_u16(d, 4, static_cast<std::uint16_t>(kDnsQuery.size() + 1));
  expect_rejected(d, "udp: length field exceeds the datagram");
}

TEST_CASE("udp: rejects a datagram truncated at every length") {
  for (std::size_t n = 0; n < kDnsQuery.size(); ++n) {
    INFO("length " << n);
    expect_rejected(ByteSpan(kDnsQuery).first(n),
                    n < 8 ? "udp: datagram is shorter than its header" : "udp: length field exceeds the datagram");
  }
}

TEST_CASE("udp: emit reproduces a parsed datagram byte for byte") {
  auto u = UdpRepr::parse(kDnsQuery, kGuest, kResolver);
  REQUIRE(u.has_value());
  Bytes out;
  u->emit(out, kGuest, kResolver);
  CHECK(to_hex(out) == to_hex(kDnsQuery));
}

TEST_CASE("udp: a reply survives emit then parse") {
  const Bytes payload = hex("0102030405");
  const UdpRepr reply{53, 40000, payload};
  Bytes out = hex("ffff");  // emit appends
  reply.emit(out, kResolver, kGuest);
  REQUIRE(out.size() == 2 + 8 + 5);
  auto back = UdpRepr::parse(ByteSpan(out).subspan(2), kResolver, kGuest);
  REQUIRE(back.has_value());
  CHECK(back->src_port == 53);
  CHECK(back->dst_port == 40000);
  CHECK(to_hex(back->payload) == "0102030405");
}

TEST_CASE("udp: a computed checksum of zero is sent as 0xffff") {
  // Choose two payload bytes that bring the one's complement sum to 0xffff.
  Bytes payload = hex("0000");
  Bytes first;
  UdpRepr{1234, 5678, payload}.emit(first, kGuest, kResolver);
  set_u16(payload, 0, get_u16(first, 6));
  Bytes out;
  UdpRepr{1234, 5678, payload}.emit(out, kGuest, kResolver);
  CHECK(get_u16(out, 6) == 0xffff);
  CHECK(UdpRepr::parse(out, kGuest, kResolver).has_value());
}
