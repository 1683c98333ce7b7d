#include <catch2/catch.hpp>

#include "daemon/net/wire/checksum.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

TEST_CASE("checksum: matches the worked example of RFC 1071") {
  // Section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is its complement.
  CHECK(internet_checksum(hex("0001 f203 f4f5 f6f7")) == 0x220d);
}

TEST_CASE("checksum: of nothing and of zeros is 0xffff") {
  CHECK(internet_checksum({}) == 0xffff);
  CHECK(internet_checksum(hex("0000 0000")) == 0xffff);
}

TEST_CASE("checksum: an odd trailing byte counts as the high byte of a word") {
  CHECK(internet_checksum(hex("0001 f2")) == internet_checksum(hex("0001 f200")));
}

TEST_CASE("checksum: data added in pieces of odd length sums as if whole") {
  Bytes data = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7 01");
  const std::uint16_t whole = internet_checksum(data);
  for (std::size_t a = 0; a <= data.size(); ++a) {
    for (std::size_t b = a; b <= data.size(); ++b) {
      InternetChecksum c;
      c.add(ByteSpan(data).subspan(0, a));
      c.add(ByteSpan(data).subspan(a, b - a));
      c.add(ByteSpan(data).subspan(b));
      INFO("split at " << a << " and " << b);
      REQUIRE(c.finish() == whole);
    }
  }
}

TEST_CASE("checksum: a textbook IPv4 header carries the checksum that makes it sum to zero") {
  Bytes header = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");
  CHECK(internet_checksum(header) == 0);
  set_u16(header, 10, 0);
  CHECK(internet_checksum(header) == 0xb861);
}

TEST_CASE("checksum: the IPv4 pseudo-header covers addresses, protocol and length") {
  // A TCP SYN from 10.0.2.15 to 93.184.216.34; its checksum field holds 0x086c.
  Bytes segment =
      hex("b26e 01bb 6b8b 4567 0000 0000 a002 faf0 086c 0000"
          "0204 05b4 0402 080a dead beef 0000 0000 0103 0307");
  const Ipv4Address src{{10, 0, 2, 15}}, dst{{93, 184, 216, 34}};
  CHECK(ipv4_transport_checksum(src, dst, IpProtocol::kTcp, segment) == 0);
  set_u16(segment, 16, 0);
  CHECK(ipv4_transport_checksum(src, dst, IpProtocol::kTcp, segment) == 0x086c);

  InternetChecksum manual;
  manual.add_ipv4_pseudo_header(src, dst, IpProtocol::kTcp, static_cast<std::uint16_t>(segment.size()));
  manual.add(segment);
  CHECK(manual.finish() == 0x086c);
  // Another protocol number or address gives another sum.
  CHECK(ipv4_transport_checksum(src, dst, IpProtocol::kUdp, segment) != 0x086c);
  CHECK(ipv4_transport_checksum(dst, Ipv4Address{{10, 0, 2, 16}}, IpProtocol::kTcp, segment) != 0x086c);
}

TEST_CASE("checksum: add_u16 and add_u32 equal adding their big-endian bytes") {
  InternetChecksum a, b;
  a.add(hex("12"));
  a.add_u16(0x3456);
  a.add_u32(0x789abcde);
  b.add(hex("12 3456 789abcde"));
  CHECK(a.finish() == b.finish());
}

TEST_CASE("checksum: the word-at-a-time sum equals the RFC 1071 definition for every length and split") {
  // The definition, one big-endian 16-bit word at a time.
  auto reference = [](ByteSpan data) {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < data.size(); i += 2)
      sum += (static_cast<std::uint32_t>(data[i]) << 8) |
             (i + 1 < data.size() ? static_cast<std::uint32_t>(data[i + 1]) : 0u);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
  };
  std::vector<std::byte> data(300);
  std::uint32_t state = 12345;
  for (auto& b : data) {
    state = state * 1103515245u + 12345u;
    b = static_cast<std::byte>(state >> 16);
  }
  for (std::size_t length = 0; length <= data.size(); ++length) {
    ByteSpan whole = ByteSpan(data).first(length);
    REQUIRE(internet_checksum(whole) == reference(whole));
    for (std::size_t cut : {std::size_t{1}, std::size_t{3}, length / 2}) {
      if (cut > length) continue;
      InternetChecksum c;
      c.add(whole.first(cut));
      c.add(whole.subspan(cut));
      REQUIRE(c.finish() == reference(whole));
    }
  }
  // All ones: the sums that fold to 0xffff.
  std::vector<std::byte> ones(64, std::byte{0xff});
  CHECK(internet_checksum(ones) == reference(ones));
}
