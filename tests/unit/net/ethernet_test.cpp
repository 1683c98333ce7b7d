#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/wire/ethernet.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

namespace {

// An ARP request broadcast by a guest, padded to the 60-byte minimum.
const Bytes kArpFrame =
    hex("ffffffffffff 525400123456 0806"
        "0001 0800 06 04 0001 525400123456 0a00020f 000000000000 0a000202"
        "000000000000000000000000000000000000");

}  // namespace

TEST_CASE("ethernet: parses the header of a broadcast ARP frame") {
  auto f = EthernetRepr::parse(kArpFrame);
  REQUIRE(f.has_value());
  CHECK(f->dst == MacAddress::broadcast());
  CHECK(f->src == MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}});
  CHECK(f->ethertype == EtherType::kArp);
  CHECK(f->payload.size() == 46);
  CHECK(f->payload.data() == kArpFrame.data() + 14);  // a view, not a copy
}

TEST_CASE("ethernet: emit reproduces a parsed frame byte for byte") {
  auto f = EthernetRepr::parse(kArpFrame);
  REQUIRE(f.has_value());
  Bytes out;
  f->emit(out);
  CHECK(to_hex(out) == to_hex(kArpFrame));
}

TEST_CASE("ethernet: emit_header writes only the 14 header bytes") {
  const EthernetRepr e{MacAddress{{2, 0, 0, 0, 0, 1}}, MacAddress{{2, 0, 0, 0, 0, 2}}, EtherType::kIpv4, {}};
  Bytes out = hex("aa");
  e.emit_header(out);
  CHECK(to_hex(out) ==
        "aa"
        "020000000001"
        "020000000002"
        "0800");
}

TEST_CASE("ethernet: a frame of just a header has an empty payload") {
  auto f = EthernetRepr::parse(ByteSpan(kArpFrame).first(14));
  REQUIRE(f.has_value());
  CHECK(f->payload.empty());
}

TEST_CASE("ethernet: unknown EtherTypes are carried through as numbers") {
  Bytes frame = kArpFrame;
  set_u16(frame, 12, 0x88cc);  // LLDP
  auto f = EthernetRepr::parse(frame);
  REQUIRE(f.has_value());
  CHECK(static_cast<std::uint16_t>(f->ethertype) == 0x88cc);
}

TEST_CASE("ethernet: rejects a frame truncated inside its header") {
  for (std::size_t n = 0; n < EthernetRepr::kHeaderLength; ++n) {
    auto f = EthernetRepr::parse(ByteSpan(kArpFrame).first(n));
    INFO("length " << n);
    REQUIRE_FALSE(f.has_value());
    CHECK(std::string(f.error().reason) == "ethernet: frame is shorter than its header");
  }
}

TEST_CASE("ethernet: rejects VLAN-tagged frames with a reason") {
  for (std::uint16_t tpid : {0x8100, 0x88a8, 0x9100}) {
    Bytes frame = kArpFrame;
    set_u16(frame, 12, tpid);
    auto f = EthernetRepr::parse(frame);
    INFO("TPID " << tpid);
    REQUIRE_FALSE(f.has_value());
    CHECK(std::string(f.error().reason) == "ethernet: VLAN-tagged frames are not supported");
  }
}

TEST_CASE("ethernet: rejects 802.3 frames whose type field is a length") {
  Bytes frame = kArpFrame;
  set_u16(frame, 12, 46);
  auto f = EthernetRepr::parse(frame);
  REQUIRE_FALSE(f.has_value());
  CHECK(std::string(f.error().reason) == "ethernet: 802.3 length field, not an Ethernet II type");
}
