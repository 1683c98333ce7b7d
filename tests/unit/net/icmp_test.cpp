#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/wire/checksum.hpp"
#include "daemon/net/wire/icmp.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

namespace {

// The ICMP part of a real ping: echo request, id 0x0a1b, seq 1, 40 bytes of data.
const Bytes kEchoRequest =
    hex("0800 2f11 0a1b 0001 1011121314151617 18191a1b1c1d1e1f 2021222324252627"
        "28292a2b2c2d2e2f 3031323334353637");

}  // namespace

TEST_CASE("icmp: parses a real echo request") {
  auto m = IcmpRepr::parse(kEchoRequest);
  REQUIRE(m.has_value());
  CHECK(m->type == IcmpType::kEchoRequest);
  CHECK(m->is_echo());
  CHECK(m->code == 0);
  CHECK(m->identifier == 0x0a1b);
  CHECK(m->sequence == 1);
  CHECK(m->payload.size() == 40);
  CHECK(static_cast<std::uint8_t>(m->payload[0]) == 0x10);
}

TEST_CASE("icmp: an echo reply built from a request survives emit then parse") {
  auto request = IcmpRepr::parse(kEchoRequest);
  REQUIRE(request.has_value());
  IcmpRepr reply = *request;
  reply.type = IcmpType::kEchoReply;
  Bytes out;
  reply.emit(out);
  CHECK(internet_checksum(out) == 0);
  // Only the type and the checksum differ from the request.
  CHECK(to_hex(out).substr(0, 4) == "0000");
  CHECK(to_hex(ByteSpan(out).subspan(4)) == to_hex(ByteSpan(kEchoRequest).subspan(4)));
  CHECK(get_u16(out, 2) == 0x3711);

  auto back = IcmpRepr::parse(out);
  REQUIRE(back.has_value());
  CHECK(back->type == IcmpType::kEchoReply);
  CHECK(back->identifier == 0x0a1b);
  CHECK(back->sequence == 1);
  CHECK(same_bytes(back->payload, request->payload));
}

TEST_CASE("icmp: other types are parsed as type and code, the rest kept raw") {
  // Destination unreachable, fragmentation needed, next-hop MTU 1400, then the
  // start of the offending datagram.
  const Bytes original = hex("4500 0578 0000 4000 4011 0000 0a00020f 08080808 9c40 0035 0564 0000");
  IcmpRepr m;
  m.type = IcmpType::kDestinationUnreachable;
  m.code = 4;
  m.sequence = 1400;
  m.payload = original;
  Bytes out;
  m.emit(out);
  CHECK(to_hex(ByteSpan(out).first(8)).substr(0, 4) == "0304");
  CHECK(to_hex(ByteSpan(out).subspan(4, 4)) == "00000578");

  auto back = IcmpRepr::parse(out);
  REQUIRE(back.has_value());
  CHECK(back->type == IcmpType::kDestinationUnreachable);
  CHECK_FALSE(back->is_echo());
  CHECK(back->code == 4);
  CHECK(back->identifier == 0);
  CHECK(back->sequence == 1400);
  CHECK(same_bytes(back->payload, original));
}

TEST_CASE("icmp: rejects a message whose checksum is wrong") {
  Bytes m = kEchoRequest;
  set_u8(m, 20, 0xff);
  auto r = IcmpRepr::parse(m);
  REQUIRE_FALSE(r.has_value());
  CHECK(std::string(r.error().reason) == "icmp: checksum is wrong");
}

TEST_CASE("icmp: rejects a message truncated at every length") {
  for (std::size_t n = 0; n < kEchoRequest.size(); ++n) {
    INFO("length " << n);
    auto r = IcmpRepr::parse(ByteSpan(kEchoRequest).first(n));
    REQUIRE_FALSE(r.has_value());
    CHECK(std::string(r.error().reason) ==
          (n < 8 ? "icmp: message is shorter than its header" : "icmp: checksum is wrong"));
  }
}
