#include <catch2/catch.hpp>

#include <string>
#include <unordered_set>

#include "daemon/net/wire/address.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

TEST_CASE("address: a MAC address prints and parses as colon-separated hex") {
  const MacAddress m{{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}};
  CHECK(m.to_string() == "52:54:00:ab:cd:ef");
  auto back = MacAddress::parse("52:54:00:AB:cd:EF");
  REQUIRE(back.has_value());
  CHECK(*back == m);
  CHECK(MacAddress::broadcast().is_broadcast());
  CHECK(MacAddress::broadcast().is_multicast());
  CHECK(MacAddress{{0x01, 0x00, 0x5e, 0, 0, 1}}.is_multicast());
  CHECK_FALSE(m.is_multicast());
  CHECK(MacAddress{}.is_zero());
}

TEST_CASE("address: malformed MAC text is refused with a reason") {
  for (const char* text :
       {"", "52:54:00:12:34", "52-54-00-12-34-56", "52:54:00:12:34:5g", "52:54:00:12:34:567", "52:54:00:12:34:56:"}) {
    INFO(text);
    auto r = MacAddress::parse(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(std::string(r.error().reason) == "mac: not six colon-separated hex octets");
  }
}

TEST_CASE("address: an IPv4 address prints and parses as a dotted quad") {
  auto a = Ipv4Address::parse("10.0.2.15");
  REQUIRE(a.has_value());
  CHECK(*a == Ipv4Address{{10, 0, 2, 15}});
  CHECK(a->to_string() == "10.0.2.15");
  CHECK(a->to_u32() == 0x0a00020f);
  CHECK(Ipv4Address::from_u32(0x0a00020f) == *a);
  CHECK(Ipv4Address::parse("255.255.255.255")->is_broadcast());
  CHECK(Ipv4Address::parse("0.0.0.0")->is_unspecified());
  CHECK(Ipv4Address::parse("224.0.0.251")->is_multicast());
  CHECK(Ipv4Address::parse("127.0.0.1")->is_loopback());
  CHECK_FALSE(a->is_multicast());
  CHECK(Ipv4Address{{10, 0, 0, 1}} < Ipv4Address{{10, 0, 0, 2}});
}

TEST_CASE("address: malformed IPv4 text is refused with a reason") {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const Case& c : {
           Case{"", "ipv4: address is not a dotted quad"},
           Case{"10.0.2", "ipv4: address is not a dotted quad"},
           Case{"10.0.2.15.1", "ipv4: address is not a dotted quad"},
           Case{"10.0.2.", "ipv4: address is not a dotted quad"},
           Case{"10..2.15", "ipv4: address is not a dotted quad"},
           Case{"10.0.2.1234", "ipv4: address is not a dotted quad"},
           Case{" 10.0.2.15", "ipv4: address is not a dotted quad"},
           Case{"10.0.2.15 ", "ipv4: address is not a dotted quad"},
           Case{"-1.0.2.15", "ipv4: address is not a dotted quad"},
           Case{"10.0.2.256", "ipv4: address octet is above 255"},
           Case{"10.0.2.015", "ipv4: address octet has a leading zero"},
       }) {
    INFO(c.text);
    auto r = Ipv4Address::parse(c.text);
    REQUIRE_FALSE(r.has_value());
    CHECK(std::string(r.error().reason) == c.reason);
  }
}

TEST_CASE("address: an IPv6 address prints in RFC 5952 form") {
  auto v6 = [](std::string_view h) {
    Ipv6Address a;
    Bytes b = hex(h);
    for (std::size_t i = 0; i < 16; ++i) a.octets[i] = static_cast<std::uint8_t>(b[i]);
    return a.to_string();
  };
  CHECK(v6("20010db8000000000000000000000001") == "2001:db8::1");
  CHECK(v6("00000000000000000000000000000000") == "::");
  CHECK(v6("00000000000000000000000000000001") == "::1");
  CHECK(v6("fe800000000000000000000000000000") == "fe80::");
  // One zero group is not shortened; of two runs the longer is, and of equal runs the first.
  CHECK(v6("20010db8000000010001000100010001") == "2001:db8:0:1:1:1:1:1");
  CHECK(v6("20010000000000010000000000000001") == "2001:0:0:1::1");
  CHECK(v6("20010db8000000000001000000000001") == "2001:db8::1:0:0:1");
  CHECK(v6("2606280001200001000000000000abcd") == "2606:2800:120:1::abcd");
}

TEST_CASE("address: addresses read and write their octets in wire order") {
  Bytes out;
  ByteWriter w(out);
  MacAddress{{1, 2, 3, 4, 5, 6}}.write(w);
  Ipv4Address{{7, 8, 9, 10}}.write(w);
  CHECK(to_hex(out) == "0102030405060708090a");

  ByteReader r(out);
  CHECK(MacAddress::read(r) == MacAddress{{1, 2, 3, 4, 5, 6}});
  CHECK(Ipv4Address::read(r) == Ipv4Address{{7, 8, 9, 10}});
  CHECK(r.ok());
  // A short read fails the reader and yields zeros.
  CHECK(Ipv4Address::read(r).is_unspecified());
  CHECK_FALSE(r.ok());
}

TEST_CASE("address: addresses can key hash sets") {
  std::unordered_set<Ipv4Address> ips{Ipv4Address{{10, 0, 2, 2}}, Ipv4Address{{10, 0, 2, 3}}};
  CHECK(ips.count(Ipv4Address{{10, 0, 2, 3}}) == 1);
  CHECK(ips.count(Ipv4Address{{10, 0, 2, 4}}) == 0);
  std::unordered_set<MacAddress> macs{MacAddress::broadcast()};
  CHECK(macs.count(MacAddress::broadcast()) == 1);
}
