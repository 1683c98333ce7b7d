#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/wire/dhcp.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

namespace {

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes zeros(std::size_t n) { return Bytes(n, std::byte{0}); }

const MacAddress kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

// A DISCOVER as a Linux client sends it: message type, client identifier,
// requested address, host name, parameter request list, end.
const Bytes kDiscover = concat(
    concat(hex("01 01 06 00 3903f326 0000 0000 00000000 00000000 00000000 00000000 525400123456 00000000000000000000"),
           zeros(64 + 128)),
    hex("63825363"
        "3501 01"
        "3d07 01525400123456"
        "3204 0a00020f"
        "0c07 73616e64626f78"
        "370b 0103060c0f1a1c33363a3b"
        "ff"));

// The 240 fixed bytes of a request from the guest, then `options` as given.
Bytes message_with_options(std::string_view options_hex) {
  Bytes out(kDiscover.begin(), kDiscover.begin() + DhcpRepr::kFixedLength);
  return concat(out, hex(options_hex));
}

void expect_rejected(ByteSpan message, const char* reason) {
  auto d = DhcpRepr::parse(message);
  REQUIRE_FALSE(d.has_value());
  CHECK(std::string(d.error().reason) == reason);
}

DhcpRepr sample_offer() {
  DhcpRepr d;
  d.op = BootpOp::kReply;
  d.xid = 0x3903f326;
  d.broadcast = true;
  d.yiaddr = Ipv4Address{{10, 0, 2, 15}};
  d.siaddr = Ipv4Address{{10, 0, 2, 2}};
  d.chaddr = kGuestMac;
  d.message_type = DhcpMessageType::kOffer;
  d.server_id = Ipv4Address{{10, 0, 2, 2}};
  d.subnet_mask = Ipv4Address{{255, 255, 255, 0}};
  d.routers = {Ipv4Address{{10, 0, 2, 2}}};
  d.dns_servers = {Ipv4Address{{10, 0, 2, 3}}, Ipv4Address{{10, 0, 2, 4}}};
  d.lease_time = 86400;
  d.renewal_time = 43200;
  d.rebinding_time = 75600;
  d.interface_mtu = 65520;
  d.hostname = "sandbox";
  d.domain_name = "sandbox.internal";
  return d;
}

}  // namespace

TEST_CASE("dhcp: parses a real DISCOVER and skips the options it does not know") {
  REQUIRE(kDiscover.size() == 281);
  auto d = DhcpRepr::parse(kDiscover);
  REQUIRE(d.has_value());
  CHECK(d->op == BootpOp::kRequest);
  CHECK(d->xid == 0x3903f326);
  CHECK_FALSE(d->broadcast);
  CHECK(d->ciaddr.is_unspecified());
  CHECK(d->chaddr == kGuestMac);
  CHECK(d->message_type == DhcpMessageType::kDiscover);
  CHECK(d->requested_ip == Ipv4Address{{10, 0, 2, 15}});
  CHECK(d->hostname == "sandbox");
  CHECK(d->parameter_request_list == std::vector<std::uint8_t>{1, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59});
  CHECK_FALSE(d->server_id.has_value());
  CHECK_FALSE(d->lease_time.has_value());
  CHECK(d->routers.empty());
}

TEST_CASE("dhcp: an OFFER survives emit then parse") {
  const DhcpRepr offer = sample_offer();
  Bytes out;
  offer.emit(out);
  CHECK(out.size() == 240 + 81);
  // The message type is the first option, right after the magic cookie.
  CHECK(to_hex(ByteSpan(out).subspan(236, 7)) == "63825363350102");
  CHECK(to_hex(ByteSpan(out).subspan(10, 2)) == "8000");  // broadcast flag
  auto back = DhcpRepr::parse(out);
  REQUIRE(back.has_value());
  CHECK(*back == offer);
}

TEST_CASE("dhcp: emit of the parsed DISCOVER parses to the same message") {
  auto d = DhcpRepr::parse(kDiscover);
  REQUIRE(d.has_value());
  Bytes out;
  d->emit(out);
  auto back = DhcpRepr::parse(out);
  REQUIRE(back.has_value());
  CHECK(*back == *d);
}

TEST_CASE("dhcp: emit pads a short message to the 300-byte BOOTP minimum") {
  DhcpRepr d;
  d.message_type = DhcpMessageType::kNak;
  Bytes out = hex("aa");
  d.emit(out);
  REQUIRE(out.size() == 1 + DhcpRepr::kMinEmitLength);
  CHECK(to_hex(ByteSpan(out).subspan(1 + 236, 8)) == "63825363350106ff");
  for (std::size_t i = 1 + 244; i < out.size(); ++i) CHECK(out[i] == std::byte{0});
}

TEST_CASE("dhcp: every message type round-trips") {
  for (int t = 1; t <= 8; ++t) {
    DhcpRepr d;
    d.message_type = static_cast<DhcpMessageType>(t);
    Bytes out;
    d.emit(out);
    auto back = DhcpRepr::parse(out);
    REQUIRE(back.has_value());
    CHECK(back->message_type == static_cast<DhcpMessageType>(t));
  }
}

TEST_CASE("dhcp: values longer than 255 bytes are split on emit and joined on parse") {
  DhcpRepr d = sample_offer();
  d.hostname = std::string(300, 'h');
  for (std::uint8_t i = 0; i < 70; ++i) d.dns_servers.push_back(Ipv4Address{{10, 1, 0, i}});
  Bytes out;
  d.emit(out);
  auto back = DhcpRepr::parse(out);
  REQUIRE(back.has_value());
  CHECK(back->hostname.size() == 300);
  CHECK(back->dns_servers.size() == 72);
  CHECK(*back == d);
}

TEST_CASE("dhcp: an option sent in pieces is joined before it is read (RFC 3396)") {
  auto d = DhcpRepr::parse(message_with_options("0604 08080808 3302 0000 0604 01010101 3302 0e10 ff"));
  REQUIRE(d.has_value());
  CHECK(d->dns_servers == std::vector<Ipv4Address>{Ipv4Address{{8, 8, 8, 8}}, Ipv4Address{{1, 1, 1, 1}}});
  CHECK(d->lease_time == 0x00000e10);
}

TEST_CASE("dhcp: overloaded file and sname fields are read for options") {
  SECTION("file") {
    Bytes m = message_with_options("3401 01 ff");
    const Bytes file = hex("3501 03 3204 0a00020f ff");
    std::copy(file.begin(), file.end(), m.begin() + 108);
    auto d = DhcpRepr::parse(m);
    REQUIRE(d.has_value());
    CHECK(d->message_type == DhcpMessageType::kRequest);
    CHECK(d->requested_ip == Ipv4Address{{10, 0, 2, 15}});
  }
  SECTION("sname") {
    Bytes m = message_with_options("3401 02 ff");
    const Bytes sname = hex("0c03 616263 ff");
    std::copy(sname.begin(), sname.end(), m.begin() + 44);
    auto d = DhcpRepr::parse(m);
    REQUIRE(d.has_value());
    CHECK(d->hostname == "abc");
  }
  SECTION("both, options first, then file, then sname") {
    Bytes m = message_with_options("3401 03 0c01 61 ff");
    const Bytes file = hex("0c01 62 3501 07");  // no end option: the field's end is enough
    const Bytes sname = hex("0c01 63 ff");
    std::copy(file.begin(), file.end(), m.begin() + 108);
    std::copy(sname.begin(), sname.end(), m.begin() + 44);
    auto d = DhcpRepr::parse(m);
    REQUIRE(d.has_value());
    CHECK(d->hostname == "abc");
    CHECK(d->message_type == DhcpMessageType::kRelease);
  }
  SECTION("without the overload option, file and sname are not options") {
    Bytes m = message_with_options("ff");
    const Bytes file = hex("3501 03 ff");
    std::copy(file.begin(), file.end(), m.begin() + 108);
    auto d = DhcpRepr::parse(m);
    REQUIRE(d.has_value());
    CHECK_FALSE(d->message_type.has_value());
  }
}

TEST_CASE("dhcp: tolerates pads, a missing end option and bytes after the end") {
  auto d = DhcpRepr::parse(message_with_options("00 00 3501 08 00"));
  REQUIRE(d.has_value());
  CHECK(d->message_type == DhcpMessageType::kInform);

  d = DhcpRepr::parse(message_with_options("3501 01 ff 3501 05 3505"));
  REQUIRE(d.has_value());
  CHECK(d->message_type == DhcpMessageType::kDiscover);

  d = DhcpRepr::parse(message_with_options(""));
  REQUIRE(d.has_value());
  CHECK_FALSE(d->message_type.has_value());
}

TEST_CASE("dhcp: trailing NULs of a host name are dropped") {
  auto d = DhcpRepr::parse(message_with_options("0c05 6775657374 00 ff"));
  REQUIRE(d.has_value());
  CHECK(d->hostname == "guest");  // 5 bytes: the NUL after the option is a pad
  d = DhcpRepr::parse(message_with_options("0c06 6775657374 00 ff"));
  REQUIRE(d.has_value());
  CHECK(d->hostname == "guest");
}

TEST_CASE("dhcp: rejects a message truncated inside the fixed header") {
  for (std::size_t n = 0; n < DhcpRepr::kFixedLength; ++n) {
    INFO("length " << n);
    expect_rejected(ByteSpan(kDiscover).first(n), "dhcp: message is shorter than the BOOTP header");
  }
}

TEST_CASE("dhcp: a DISCOVER cut inside its options is rejected or read without the cut option") {
  // Cutting at an option boundary leaves a valid message without the end option;
  // cutting inside an option leaves one that runs past the message.
  for (std::size_t n = DhcpRepr::kFixedLength; n < kDiscover.size(); ++n) {
    INFO("length " << n);
    auto d = DhcpRepr::parse(ByteSpan(kDiscover).first(n));
    if (!d.has_value()) {
      const std::string reason = d.error().reason;
      CHECK((reason == "dhcp: option runs past its field" || reason == "dhcp: option has no length byte"));
    }
  }
  CHECK(DhcpRepr::parse(ByteSpan(kDiscover).first(243)).has_value());
  CHECK_FALSE(DhcpRepr::parse(ByteSpan(kDiscover).first(244)).has_value());
}

TEST_CASE("dhcp: rejects plain BOOTP and foreign hardware") {
  Bytes m = kDiscover;
  set_u8(m, 236, 0x64);
  expect_rejected(m, "dhcp: magic cookie is missing (plain BOOTP)");
  m = kDiscover;
  set_u8(m, 1, 6);
  expect_rejected(m, "dhcp: hardware address is not Ethernet");
  m = kDiscover;
  set_u8(m, 2, 16);
  expect_rejected(m, "dhcp: hardware address is not Ethernet");
  m = kDiscover;
  set_u8(m, 0, 3);
  expect_rejected(m, "dhcp: op is neither request nor reply");
}

TEST_CASE("dhcp: rejects malformed option lengths with a reason") {
  struct Case {
    const char* options;
    const char* reason;
  };
  for (const Case& c : {
           Case{"3505 01", "dhcp: option runs past its field"},
           Case{"3501 01 35", "dhcp: option has no length byte"},
           Case{"3502 0101 ff", "dhcp: message type option length is not 1"},
           Case{"3203 0a0002 ff", "dhcp: requested IP option length is not 4"},
           Case{"3605 0a00020200 ff", "dhcp: server id option length is not 4"},
           Case{"0103 ffffff ff", "dhcp: subnet mask option length is not 4"},
           Case{"0305 0a00020201 ff", "dhcp: router option length is not a positive multiple of 4"},
           Case{"0600 ff", "dhcp: DNS server option length is not a positive multiple of 4"},
           Case{"3303 000e10 ff", "dhcp: lease time option length is not 4"},
           Case{"3a02 0000 ff", "dhcp: renewal time option length is not 4"},
           Case{"3b05 0000000000 ff", "dhcp: rebinding time option length is not 4"},
           Case{"1a01 05 ff", "dhcp: interface MTU option length is not 2"},
           Case{"3402 0101 ff", "dhcp: overload option length is not 1"},
           Case{"3401 04 ff", "dhcp: overload option is not 1, 2 or 3"},
           Case{"3401 00 ff", "dhcp: overload option is not 1, 2 or 3"},
       }) {
    INFO(c.options);
    expect_rejected(message_with_options(c.options), c.reason);
  }
}

TEST_CASE("dhcp: rejects an option that runs past an overloaded field") {
  Bytes m = message_with_options("3401 02 ff");
  const Bytes sname = hex("0c7f 61");  // 127 bytes claimed in a 64-byte field
  std::copy(sname.begin(), sname.end(), m.begin() + 44);
  expect_rejected(m, "dhcp: option runs past its field");
}
