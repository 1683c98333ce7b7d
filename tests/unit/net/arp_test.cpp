#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/wire/arp.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

namespace {

// "Who has 10.0.2.2? Tell 10.0.2.15", as the payload of a 60-byte frame.
const Bytes kRequest =
    hex("0001 0800 06 04 0001 525400123456 0a00020f 000000000000 0a000202"
        "000000000000000000000000000000000000");

void expect_rejected(ByteSpan packet, const char* reason) {
  auto a = ArpRepr::parse(packet);
  REQUIRE_FALSE(a.has_value());
  CHECK(std::string(a.error().reason) == reason);
}

}  // namespace

TEST_CASE("arp: parses a real request and ignores the Ethernet padding") {
  auto a = ArpRepr::parse(kRequest);
  REQUIRE(a.has_value());
  CHECK(a->operation == ArpOperation::kRequest);
  CHECK(a->sender_mac == MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}});
  CHECK(a->sender_ip == Ipv4Address{{10, 0, 2, 15}});
  CHECK(a->target_mac.is_zero());
  CHECK(a->target_ip == Ipv4Address{{10, 0, 2, 2}});
}

TEST_CASE("arp: a reply survives emit then parse") {
  const ArpRepr reply{ArpOperation::kReply, MacAddress{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}},
                      Ipv4Address{{10, 0, 2, 2}}, MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}},
                      Ipv4Address{{10, 0, 2, 15}}};
  Bytes out;
  reply.emit(out);
  CHECK(out.size() == ArpRepr::kLength);
  CHECK(to_hex(out) ==
        "0001080006040002"
        "52550a000202"
        "0a000202"
        "525400123456"
        "0a00020f");
  auto back = ArpRepr::parse(out);
  REQUIRE(back.has_value());
  CHECK(*back == reply);
}

TEST_CASE("arp: emit of a parsed request gives back its 28 bytes") {
  auto a = ArpRepr::parse(kRequest);
  REQUIRE(a.has_value());
  Bytes out;
  a->emit(out);
  CHECK(to_hex(out) == to_hex(ByteSpan(kRequest).first(28)));
}

TEST_CASE("arp: rejects a packet truncated at any length below 28") {
  for (std::size_t n = 0; n < ArpRepr::kLength; ++n) {
    INFO("length " << n);
    expect_rejected(ByteSpan(kRequest).first(n), "arp: packet is shorter than 28 bytes");
  }
}

TEST_CASE("arp: rejects other hardware, protocols, address sizes and operations") {
  Bytes p = kRequest;
  set_u16(p, 0, 6);  // IEEE 802
  expect_rejected(p, "arp: hardware type is not Ethernet");
  p = kRequest;
  set_u16(p, 2, 0x86dd);
  expect_rejected(p, "arp: protocol type is not IPv4");
  p = kRequest;
  set_u8(p, 4, 8);
  expect_rejected(p, "arp: address lengths are not 6 and 4");
  p = kRequest;
  set_u8(p, 5, 16);
  expect_rejected(p, "arp: address lengths are not 6 and 4");
  for (std::uint16_t op : {0, 3, 4, 8}) {  // RARP and InARP are not spoken
    p = kRequest;
    set_u16(p, 6, op);
    INFO("operation " << op);
    expect_rejected(p, "arp: operation is neither request nor reply");
  }
}
