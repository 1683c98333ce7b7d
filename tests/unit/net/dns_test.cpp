#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/wire/dns.hpp"
#include "wire_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::test;

namespace {

// A stub resolver's query: www.example.com A, recursion desired.
const Bytes kQuery = hex("beef 0100 0001 0000 0000 0000 03777777 076578616d706c65 03636f6d 00 0001 0001");

// The answer as a server compresses it: the CNAME's owner points at the
// question (c00c), its target at "example.com" inside it (c010), and so does
// the A record's owner.
const Bytes kCompressedResponse =
    hex("beef 8180 0001 0002 0000 0000"
        "03777777 076578616d706c65 03636f6d 00 0001 0001"
        "c00c 0005 0001 0000012c 0002 c010"
        "c010 0001 0001 00000e10 0004 5db8d822");

// The same answer without compression.
const Bytes kUncompressedResponse =
    hex("beef 8180 0001 0002 0000 0000"
        "03777777 076578616d706c65 03636f6d 00 0001 0001"
        "03777777 076578616d706c65 03636f6d 00 0005 0001 0000012c 000d 076578616d706c65 03636f6d 00"
        "076578616d706c65 03636f6d 00 0001 0001 00000e10 0004 5db8d822");

void expect_rejected(ByteSpan message, const char* reason) {
  auto m = DnsRepr::parse(message);
  REQUIRE_FALSE(m.has_value());
  CHECK(std::string(m.error().reason) == reason);
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A one-question query for `name` given as wire bytes.
Bytes query_for(const Bytes& wire_name) {
  return concat(concat(hex("0001 0100 0001 0000 0000 0000"), wire_name), hex("0001 0001"));
}

Bytes wire_name(const std::vector<std::size_t>& label_lengths, char fill = 'a') {
  Bytes out;
  for (std::size_t n : label_lengths) {
    out.push_back(static_cast<std::byte>(n));
    out.insert(out.end(), n, static_cast<std::byte>(fill));
  }
  out.push_back(std::byte{0});
  return out;
}

// A response whose second answer's owner name follows `chain` pointers, each
// pointing at the one before, the first at the name "a" at offset 12.
Bytes pointer_chain(std::size_t chain) {
  Bytes m = hex("0000 8180 0000 0002 0000 0000 0161 00 0010 0001 00000000");
  set_u16(m, 6, 2);
  ByteWriter w(m);
  w.u16(static_cast<std::uint16_t>(2 * chain));
  const std::size_t first = m.size();  // 25
  w.u16(0xc00c);
  for (std::size_t k = 1; k < chain; ++k) w.u16(static_cast<std::uint16_t>(0xc000 | (first + 2 * (k - 1))));
  w.u16(static_cast<std::uint16_t>(0xc000 | (first + 2 * (chain - 1))));
  w.u16(16);
  w.u16(1);
  w.u32(0);
  w.u16(0);
  return m;
}

}  // namespace

TEST_CASE("dns: parses a real query") {
  auto m = DnsRepr::parse(kQuery);
  REQUIRE(m.has_value());
  CHECK(m->id == 0xbeef);
  CHECK_FALSE(m->response);
  CHECK(m->opcode == 0);
  CHECK(m->recursion_desired);
  CHECK_FALSE(m->recursion_available);
  REQUIRE(m->questions.size() == 1);
  CHECK(m->questions[0] == DnsQuestion{"www.example.com", DnsType::kA, kDnsClassIn});
  CHECK(m->answers.empty());
}

TEST_CASE("dns: parses a compressed response with a CNAME") {
  auto m = DnsRepr::parse(kCompressedResponse);
  REQUIRE(m.has_value());
  CHECK(m->response);
  CHECK(m->recursion_available);
  CHECK(m->rcode == DnsRcode::kNoError);
  REQUIRE(m->answers.size() == 2);
  CHECK(m->answers[0].name == "www.example.com");
  CHECK(m->answers[0].type == DnsType::kCname);
  CHECK(m->answers[0].ttl == 300);
  CHECK(std::get<std::string>(m->answers[0].data) == "example.com");
  CHECK(m->answers[1].name == "example.com");
  CHECK(m->answers[1].type == DnsType::kA);
  CHECK(m->answers[1].ttl == 3600);
  CHECK(std::get<Ipv4Address>(m->answers[1].data) == Ipv4Address{{93, 184, 216, 34}});
}

TEST_CASE("dns: emit writes a parsed compressed response out uncompressed") {
  auto m = DnsRepr::parse(kCompressedResponse);
  REQUIRE(m.has_value());
  Bytes out;
  REQUIRE(m->emit(out).has_value());
  CHECK(to_hex(out) == to_hex(kUncompressedResponse));
  auto again = DnsRepr::parse(out);
  REQUIRE(again.has_value());
  CHECK(*again == *m);
}

TEST_CASE("dns: emit reproduces a parsed query byte for byte") {
  auto m = DnsRepr::parse(kQuery);
  REQUIRE(m.has_value());
  Bytes out;
  REQUIRE(m->emit(out).has_value());
  CHECK(to_hex(out) == to_hex(kQuery));
}

TEST_CASE("dns: a response with every kind of record survives emit then parse") {
  DnsRepr m;
  m.id = 7;
  m.response = true;
  m.opcode = 0;
  m.authoritative = true;
  m.truncated = true;
  m.recursion_desired = true;
  m.recursion_available = true;
  m.authentic_data = true;
  m.checking_disabled = true;
  m.rcode = DnsRcode::kNameError;
  m.questions = {{"Example.COM", DnsType::kAny, kDnsClassIn}};
  Ipv6Address v6;
  v6.octets = {0x26, 0x06, 0x28, 0x00, 0x02, 0x20, 0x00, 0x01, 0x02, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46};
  m.answers = {
      {"Example.COM", DnsType::kA, kDnsClassIn, 60, Ipv4Address{{93, 184, 216, 34}}},
      {"Example.COM", DnsType::kAaaa, kDnsClassIn, 60, v6},
      {"www.example.com", DnsType::kCname, kDnsClassIn, 60, std::string("example.com")},
      {"example.com", DnsType::kMx, kDnsClassIn, 60, hex("000a 046d61696c 076578616d706c65 03636f6d 00")},
      {"example.com", DnsType::kTxt, kDnsClassIn, 60, hex("05 68656c6c6f")},
      {"_sip._tcp.example.com", DnsType::kSrv, kDnsClassIn, 60, hex("0001 0002 13c4 03736970 00")},
  };
  m.authorities = {{"example.com", DnsType::kSoa, kDnsClassIn, 60,
                    hex("026e73 00 0a686f73746d6173746572 00 00000001 00000002 00000003 00000004 00000005")}};
  m.additionals = {{"", DnsType::kOpt, 1232, 0, Bytes{}}};
  Bytes out;
  REQUIRE(m.emit(out).has_value());
  CHECK(to_hex(ByteSpan(out).first(4)) ==
        "0007"
        "87b3");
  auto back = DnsRepr::parse(out);
  REQUIRE(back.has_value());
  CHECK(*back == m);
}

TEST_CASE("dns: names inside MX and SOA data are expanded so the data stands alone") {
  // example.com MX 10 mail.example.com, and its SOA, both compressed against the question.
  const Bytes m =
      hex("0001 8180 0001 0002 0000 0000"
          "076578616d706c65 03636f6d 00 000f 0001"
          "c00c 000f 0001 00000e10 0009 000a 046d61696c c00c"
          "c00c 0006 0001 00000e10 0026 026e73 c00c 0a686f73746d6173746572 c00c"
          "00000001 00000002 00000003 00000004 00000005");
  auto r = DnsRepr::parse(m);
  REQUIRE(r.has_value());
  REQUIRE(r->answers.size() == 2);
  CHECK(to_hex(std::get<Bytes>(r->answers[0].data)) == "000a046d61696c076578616d706c6503636f6d00");
  CHECK(to_hex(std::get<Bytes>(r->answers[1].data)) ==
        "026e73076578616d706c6503636f6d00"
        "0a686f73746d6173746572076578616d706c6503636f6d00"
        "0000000100000002000000030000000400000005");
}

TEST_CASE("dns: names inside raw record data may hold any byte") {
  // An SOA whose mailbox has a dot inside its first label, as RFC 1035 allows.
  const Bytes m =
      hex("0001 8180 0000 0001 0000 0000"
          "00 0006 0001 00000e10 0023 00 08 6a6f686e2e646f65 0378797a 00"
          "00000001 00000002 00000003 00000004 00000005");
  auto r = DnsRepr::parse(m);
  REQUIRE(r.has_value());
  CHECK(r->answers[0].name.empty());
}

TEST_CASE("dns: header flags sit at their RFC 1035 bit positions") {
  DnsRepr m;
  m.id = 0x1234;
  m.response = true;
  m.opcode = 2;
  m.authoritative = true;
  m.rcode = DnsRcode::kRefused;
  Bytes out;
  REQUIRE(m.emit(out).has_value());
  CHECK(to_hex(out) ==
        "1234"
        "9405"
        "0000000000000000");
  auto back = DnsRepr::parse(out);
  REQUIRE(back.has_value());
  CHECK(back->opcode == 2);
  CHECK(back->rcode == DnsRcode::kRefused);
}

TEST_CASE("dns: rejects a response truncated at every length") {
  for (std::size_t n = 0; n < kCompressedResponse.size(); ++n) {
    INFO("length " << n);
    CHECK_FALSE(DnsRepr::parse(ByteSpan(kCompressedResponse).first(n)).has_value());
  }
}

TEST_CASE("dns: ignores bytes after the last record") {
  Bytes m = concat(kQuery, hex("deadbeef"));
  auto r = DnsRepr::parse(m);
  REQUIRE(r.has_value());
  CHECK(r->questions.size() == 1);
}

TEST_CASE("dns: rejects compression pointers that loop or point forward") {
  SECTION("a name pointing at itself") {
    expect_rejected(query_for(hex("c00c")), "dns: compression pointer does not point backwards");
  }
  SECTION("a name pointing at its own first label") {
    expect_rejected(query_for(hex("0161 c00c")), "dns: compression pointer does not point backwards");
  }
  SECTION("a pointer past the name") {
    expect_rejected(query_for(hex("c00e 00")), "dns: compression pointer does not point backwards");
  }
  SECTION("two pointers pointing at each other") {
    // A raw TXT record holds c01b c019 at offsets 25 and 27; the next owner points into them.
    Bytes m =
        hex("0000 8180 0000 0002 0000 0000 0161 00 0010 0001 00000000 0004 c01b c019 c019 0010 0001 00000000 0000");
    expect_rejected(m, "dns: compression pointer does not point backwards");
  }
  SECTION("a pointer cut short") {
    expect_rejected(hex("0000 0100 0001 0000 0000 0000 c0"), "dns: compression pointer is cut short");
  }
}

TEST_CASE("dns: a name may follow at most kMaxPointerJumps pointers") {
  static_assert(DnsRepr::kMaxPointerJumps == 32);
  auto ok = DnsRepr::parse(pointer_chain(31));
  REQUIRE(ok.has_value());
  CHECK(ok->answers[1].name == "a");
  expect_rejected(pointer_chain(32), "dns: name follows too many compression pointers");
}

TEST_CASE("dns: limits names to 63-byte labels and 253 characters") {
  auto m = DnsRepr::parse(query_for(wire_name({63, 63, 63, 61})));
  REQUIRE(m.has_value());
  CHECK(m->questions[0].name.size() == 253);
  expect_rejected(query_for(wire_name({63, 63, 63, 62})), "dns: name is longer than 255 bytes");
  expect_rejected(query_for(wire_name({63, 63, 63, 63, 63})), "dns: name is longer than 255 bytes");
  // Length bytes of 64 and above are the reserved label types 01 and 10.
  expect_rejected(query_for(wire_name({64})), "dns: label type is not supported");
  expect_rejected(query_for(hex("80 00")), "dns: label type is not supported");
  // The limit holds across compression pointers too.
  Bytes long_suffix = wire_name({63, 63, 63});
  Bytes m2 = concat(concat(hex("0000 0100 0002 0000 0000 0000"), long_suffix), hex("0001 0001 3e"));
  m2.insert(m2.end(), 62, std::byte{'b'});
  m2 = concat(m2, hex("c00c 0001 0001"));
  expect_rejected(m2, "dns: name is longer than 255 bytes");
}

TEST_CASE("dns: rejects names whose text would be ambiguous") {
  expect_rejected(query_for(hex("03 612e62 00")), "dns: label holds a dot, a backslash or an unprintable byte");
  expect_rejected(query_for(hex("03 612062 00")), "dns: label holds a dot, a backslash or an unprintable byte");
  expect_rejected(query_for(hex("03 615c62 00")), "dns: label holds a dot, a backslash or an unprintable byte");
  expect_rejected(query_for(hex("02 61ff 00")), "dns: label holds a dot, a backslash or an unprintable byte");
  CHECK(DnsRepr::parse(query_for(hex("04 5f736970 01 2a 00"))).has_value());  // _sip.*
}

TEST_CASE("dns: rejects records whose data does not fit their type or the message") {
  const Bytes head = hex("0000 8180 0000 0001 0000 0000 0161 00");
  expect_rejected(concat(head, hex("0001 0001 00000000 0005 0102030405")), "dns: A record data is not 4 bytes");
  expect_rejected(concat(head, hex("001c 0001 00000000 0004 01020304")), "dns: AAAA record data is not 16 bytes");
  expect_rejected(concat(head, hex("0005 0001 00000000 0003 c00c 00")),
                  "dns: record data length does not match its contents");
  expect_rejected(concat(head, hex("0005 0001 00000000 0001 c00c")),
                  "dns: record data length does not match its contents");
  expect_rejected(concat(head, hex("000f 0001 00000000 0001 00")),
                  "dns: record data length does not match its contents");
  expect_rejected(concat(head, hex("0006 0001 00000000 0006 00 00 00000001")),
                  "dns: record data length does not match its contents");
  expect_rejected(concat(head, hex("0010 0001 00000000 0005 0102")), "dns: record data runs past the message");
  expect_rejected(concat(head, hex("0010 0001 0000")), "dns: record is cut short");
  // In another class an A record is opaque.
  auto chaos = DnsRepr::parse(concat(head, hex("0001 0003 00000000 0005 0102030405")));
  REQUIRE(chaos.has_value());
  CHECK(std::get<Bytes>(chaos->answers[0].data).size() == 5);
}

TEST_CASE("dns: rejects large counts in a small message without trying to read them") {
  expect_rejected(hex("0000 0100 ffff ffff ffff ffff"), "dns: name runs past the message");
  expect_rejected(hex("0000 0100 0000 ffff 0000 0000"), "dns: name runs past the message");
  expect_rejected(hex("0000 0100 0001"), "dns: message is shorter than its header");
}

TEST_CASE("dns: emit refuses invalid names and leaves the output as it was") {
  for (const char* name : {"a..b", ".a", "a b", "a\\b", "..", "bad\x01name"}) {
    DnsRepr m;
    m.questions = {{name, DnsType::kA, kDnsClassIn}};
    Bytes out = hex("aa");
    INFO(name);
    CHECK_FALSE(m.emit(out).has_value());
    CHECK(to_hex(out) == "aa");
    CHECK_FALSE(is_valid_dns_name(name));
  }
  DnsRepr m;
  m.questions = {{std::string(64, 'x') + ".com", DnsType::kA, kDnsClassIn}};
  Bytes out;
  auto r = m.emit(out);
  REQUIRE_FALSE(r.has_value());
  CHECK(std::string(r.error().reason) == "dns: label is longer than 63 bytes");
  CHECK(out.empty());

  m.questions = {
      {std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(62, 'd'),
       DnsType::kA, kDnsClassIn}};
  r = m.emit(out);
  REQUIRE_FALSE(r.has_value());
  CHECK(std::string(r.error().reason) == "dns: name is longer than 253 characters");

  m.answers = {{"ok.example", DnsType::kCname, kDnsClassIn, 0, std::string("bad..target")}};
  m.questions.clear();
  CHECK_FALSE(m.emit(out).has_value());
  CHECK(out.empty());
}

TEST_CASE("dns: a trailing dot names the same name, and the root is empty") {
  CHECK(is_valid_dns_name("example.com."));
  CHECK(is_valid_dns_name("example.com"));
  CHECK(is_valid_dns_name(""));
  CHECK(is_valid_dns_name("."));
  DnsRepr a, b;
  a.questions = {{"example.com.", DnsType::kA, kDnsClassIn}};
  b.questions = {{"example.com", DnsType::kA, kDnsClassIn}};
  Bytes out_a, out_b;
  REQUIRE(a.emit(out_a).has_value());
  REQUIRE(b.emit(out_b).has_value());
  CHECK(to_hex(out_a) == to_hex(out_b));

  DnsRepr root;
  root.questions = {{"", DnsType::kNs, kDnsClassIn}};
  Bytes out;
  REQUIRE(root.emit(out).has_value());
  CHECK(to_hex(ByteSpan(out).subspan(12)) == "0000020001");
}
