#include <catch2/catch.hpp>

#include <string>

#include "daemon/net/tls/client_hello.hpp"
#include "tls_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::tls;
using namespace sandboxd::net::tls::test;

namespace {

ByteSpan prefix(const Bytes& b, std::size_t n) { return ByteSpan(b).first(n); }

Bytes text(std::string_view s) {
  const ByteSpan span = as_bytes(s);
  return Bytes(span.begin(), span.end());
}

const std::vector<std::string> kAlpn = {"h2", "http/1.1"};

}  // namespace

TEST_CASE("client hello: OpenSSL's hello parses whole, with SNI, ALPN and versions") {
  const Bytes hello = openssl_client_hello({"API.Example.com", kAlpn, 0});
  const auto r = parse_client_hello(hello);
  REQUIRE(r.status == ClientHelloStatus::kComplete);
  CHECK(r.hello.sni_status == SniStatus::kHostName);
  CHECK(r.hello.sni == "api.example.com");
  CHECK_FALSE(r.hello.sni_absent());
  CHECK(r.hello.alpn == kAlpn);
  REQUIRE(r.hello.supported_versions.has_value());
  CHECK(std::find(r.hello.supported_versions->begin(), r.hello.supported_versions->end(), 0x0304) !=
        r.hello.supported_versions->end());
  CHECK(r.hello.legacy_version == 0x0303);
  CHECK(r.hello.record_bytes == hello.size());
  CHECK_FALSE(r.hello.offers_encrypted_client_hello);
}

TEST_CASE("client hello: bytes after the ClientHello's records are not counted") {
  Bytes hello = openssl_client_hello({"example.com", {}, 0});
  const std::size_t size = hello.size();
  hello.push_back(std::byte{23});  // the start of a next record
  const auto r = parse_client_hello(hello);
  REQUIRE(r.status == ClientHelloStatus::kComplete);
  CHECK(r.hello.record_bytes == size);
}

TEST_CASE("client hello: byte by byte needs more until the last byte, and says how much") {
  const Bytes hello = openssl_client_hello({"example.com", kAlpn, 0});
  for (std::size_t n = 0; n < hello.size(); ++n) {
    const auto r = parse_client_hello(prefix(hello, n));
    INFO("prefix " << n);
    REQUIRE(r.status == ClientHelloStatus::kNeedMore);
    REQUIRE(r.needed > n);
    REQUIRE(r.needed <= hello.size());
  }
  CHECK(parse_client_hello(prefix(hello, 0)).needed == 5);
  CHECK(parse_client_hello(prefix(hello, 5)).needed == hello.size());
  CHECK(parse_client_hello(hello).status == ClientHelloStatus::kComplete);
}

TEST_CASE("client hello: split across records, even inside the handshake header") {
  const Bytes hello = openssl_client_hello({"split.example.com", kAlpn, 0});
  const auto whole = parse_client_hello(hello);
  REQUIRE(whole.status == ClientHelloStatus::kComplete);
  for (const std::vector<std::size_t>& sizes :
       {std::vector<std::size_t>{100}, std::vector<std::size_t>{2}, std::vector<std::size_t>{1, 1, 1, 1, 50}}) {
    const Bytes split = split_records(hello, sizes);
    const auto r = parse_client_hello(split);
    REQUIRE(r.status == ClientHelloStatus::kComplete);
    CHECK(r.hello.sni == "split.example.com");
    CHECK(r.hello.alpn == kAlpn);
    CHECK(r.hello.record_bytes == split.size());
    CHECK(r.hello.record_bytes == hello.size() + 5 * sizes.size());
    // Every prefix of the split form needs more.
    for (std::size_t n = 0; n < split.size(); ++n) {
      REQUIRE(parse_client_hello(prefix(split, n)).status == ClientHelloStatus::kNeedMore);
    }
  }
}

TEST_CASE("client hello: a record of another type between the pieces is malformed") {
  const Bytes split = split_records(openssl_client_hello({"example.com", {}, 0}), {100});
  Bytes broken = split;
  broken[105] = std::byte{21};  // the second record claims to be an alert
  const auto r = parse_client_hello(broken);
  CHECK(r.status == ClientHelloStatus::kMalformed);
  CHECK(std::string(r.reason) == "tls: a record of another type interrupts the ClientHello");
}

TEST_CASE("client hello: GREASE, unknown and ECH extensions are skipped") {
  const Bytes hello = openssl_client_hello({"example.com", kAlpn, 0});
  const Bytes extra =
      concat({extension(0x0a0a, {}), extension(0x1234, text("opaque")),
              extension(kExtensionEncryptedClientHello, text("ech-payload")), extension(0xfafa, {std::byte{0}})});
  const Bytes edited = inject_extensions(hello, extra);
  const auto r = parse_client_hello(edited);
  REQUIRE(r.status == ClientHelloStatus::kComplete);
  CHECK(r.hello.sni == "example.com");
  CHECK(r.hello.alpn == kAlpn);
  CHECK(r.hello.offers_encrypted_client_hello);
  CHECK(r.hello.record_bytes == edited.size());
}

TEST_CASE("client hello: no SNI is reported absent") {
  const auto r = parse_client_hello(openssl_client_hello({"", {}, TLS1_2_VERSION}));
  REQUIRE(r.status == ClientHelloStatus::kComplete);
  CHECK(r.hello.sni_absent());
  CHECK(r.hello.sni.empty());
  CHECK(r.hello.alpn.empty());
}

TEST_CASE("client hello: a TLS 1.2-only client may omit supported_versions") {
  const auto r = parse_client_hello(openssl_client_hello({"example.com", {}, TLS1_2_VERSION}));
  REQUIRE(r.status == ClientHelloStatus::kComplete);
  CHECK_FALSE(r.hello.supported_versions.has_value());
}

TEST_CASE("client hello: an IP literal SNI is reported as one, not dropped") {
  const auto r = parse_client_hello(openssl_client_hello({"192.0.2.7", {}, 0}));
  REQUIRE(r.status == ClientHelloStatus::kComplete);
  CHECK(r.hello.sni_status == SniStatus::kIpLiteral);
  CHECK(r.hello.sni == "192.0.2.7");

  const auto v6 = parse_client_hello(handmade_client_hello(sni_extension("2001:DB8::1")));
  REQUIRE(v6.status == ClientHelloStatus::kComplete);
  CHECK(v6.hello.sni_status == SniStatus::kIpLiteral);
  CHECK(v6.hello.sni == "2001:db8::1");
}

TEST_CASE("client hello: invalid host names are reported with a reason") {
  for (const char* name : {"bad name.example", "example.com.", "1.2.3", "0x7f.1", "a..b", "ex\x01mple.com",
                           "*.example.com", "example.com:443", "evil.example/x", "a,b.example"}) {
    const auto r = parse_client_hello(handmade_client_hello(sni_extension(name)));
    INFO(name);
    REQUIRE(r.status == ClientHelloStatus::kComplete);
    CHECK(r.hello.sni_status == SniStatus::kInvalid);
    CHECK(r.hello.sni.empty());
    CHECK(std::string(r.hello.sni_error).size() > 0);
  }
  const auto long_label = parse_client_hello(handmade_client_hello(sni_extension(std::string(64, 'a') + ".com")));
  CHECK(long_label.hello.sni_status == SniStatus::kInvalid);
}

TEST_CASE("client hello: a ClientHello without any extensions parses") {
  const auto r = parse_client_hello(handmade_client_hello({}, false));
  REQUIRE(r.status == ClientHelloStatus::kComplete);
  CHECK(r.hello.sni_absent());
}

TEST_CASE("client hello: other protocols are not TLS") {
  using namespace std::string_view_literals;
  for (std::string_view s : {"GET / HTTP/1.1\r\n"sv, "SSH-2.0-OpenSSH_9.2p1\r\n"sv, "\x16\x02"sv, "\x16\x03\x05"sv,
                             "\x16\x03\x00\x00\x10"sv, "\x17\x03\x03\x00\x10"sv}) {
    const auto r = parse_client_hello(as_bytes(s));
    INFO(s);
    CHECK(r.status == ClientHelloStatus::kNotTls);
  }
  // One byte is enough to tell.
  CHECK(parse_client_hello(as_bytes("G")).status == ClientHelloStatus::kNotTls);
  CHECK(parse_client_hello(as_bytes("\x16")).status == ClientHelloStatus::kNeedMore);
}

TEST_CASE("client hello: broken lengths are malformed") {
  const Bytes hello = openssl_client_hello({"example.com", kAlpn, 0});
  const std::size_t ext = extensions_offset(hello);

  SECTION("handshake message longer than its record says, with nothing after") {
    Bytes b = hello;
    put_u24(b, 6, get_u16(b, 3) - 4 + 1);  // one more than the record holds
    // The message continues into a next record which never comes: more is needed.
    CHECK(parse_client_hello(b).status == ClientHelloStatus::kNeedMore);
    b.insert(b.end(), {std::byte{21}, std::byte{3}, std::byte{3}});
    CHECK(parse_client_hello(b).status == ClientHelloStatus::kMalformed);
  }
  SECTION("handshake message shorter than its record") {
    Bytes b = hello;
    put_u24(b, 6, get_u16(b, 3) - 4 - 1);
    CHECK(std::string(parse_client_hello(b).reason) == "tls: a record holds bytes after the ClientHello");
  }
  SECTION("extension block overlong") {
    Bytes b = hello;
    put_u16(b, ext, get_u16(b, ext) + 1);
    CHECK(std::string(parse_client_hello(b).reason) == "tls: extension block runs past the ClientHello");
  }
  SECTION("extension block short: trailing bytes") {
    Bytes b = hello;
    put_u16(b, ext, get_u16(b, ext) - 1);
    CHECK(std::string(parse_client_hello(b).reason) == "tls: bytes after the extension block");
  }
  SECTION("an extension's length runs past the block") {
    Bytes b = hello;
    put_u16(b, ext + 4, 0xfff0);
    CHECK(std::string(parse_client_hello(b).reason) == "tls: extension runs past the extension block");
  }
  SECTION("trailing bytes inside the extension block") {
    const Bytes extensions = concat({sni_extension("example.com"), Bytes{std::byte{0}, std::byte{1}}});
    CHECK(std::string(parse_client_hello(handmade_client_hello(extensions)).reason) ==
          "tls: trailing bytes in the extension block");
  }
  SECTION("session id longer than 32") {
    Bytes b = hello;
    b[5 + 4 + 2 + 32] = std::byte{33};
    CHECK(parse_client_hello(b).status == ClientHelloStatus::kMalformed);
  }
  SECTION("truncated body") {
    Bytes b(hello.begin(), hello.begin() + 5 + 4 + 20);
    put_u16(b, 3, 24);
    put_u24(b, 6, 20);
    CHECK(std::string(parse_client_hello(b).reason) == "tls: ClientHello is truncated");
  }
  SECTION("SNI list length off by one") {
    Bytes sni = sni_extension("example.com");
    put_u16(sni, 4, get_u16(sni, 4) + 1);
    CHECK(parse_client_hello(handmade_client_hello(sni)).status == ClientHelloStatus::kMalformed);
  }
  SECTION("empty record") {
    const Bytes b = {std::byte{22}, std::byte{3}, std::byte{1}, std::byte{0}, std::byte{0}};
    CHECK(std::string(parse_client_hello(b).reason) == "tls: empty handshake record");
  }
  SECTION("a handshake message that is not a ClientHello") {
    Bytes b = hello;
    b[5] = std::byte{2};
    CHECK(std::string(parse_client_hello(prefix(b, 6)).reason) == "tls: first handshake message is not a ClientHello");
  }
}

TEST_CASE("client hello: duplicate extensions are malformed") {
  const Bytes hello = openssl_client_hello({"example.com", {}, 0});
  const auto r = parse_client_hello(inject_extensions(hello, sni_extension("other.example.com")));
  CHECK(r.status == ClientHelloStatus::kMalformed);
  CHECK(std::string(r.reason) == "tls: an extension appears twice");
  const auto grease =
      parse_client_hello(inject_extensions(hello, concat({extension(0x0a0a, {}), extension(0x0a0a, {})})));
  CHECK(grease.status == ClientHelloStatus::kMalformed);
}

TEST_CASE("client hello: pre_shared_key must come last") {
  const Bytes extensions = concat({extension(kExtensionPreSharedKey, text("psk")), sni_extension("example.com")});
  const auto r = parse_client_hello(handmade_client_hello(extensions));
  CHECK(std::string(r.reason) == "tls: pre_shared_key is not the last extension");
  const auto ok = parse_client_hello(
      handmade_client_hello(concat({sni_extension("example.com"), extension(kExtensionPreSharedKey, text("psk"))})));
  CHECK(ok.status == ClientHelloStatus::kComplete);
}

TEST_CASE("client hello: more than 16 KiB is malformed as soon as the lengths say so") {
  // A big padding-like extension pushes the message past the bound.
  const Bytes big = handmade_client_hello(concat({sni_extension("example.com"), extension(0x0015, Bytes(16400))}));
  // The record header alone already says it: the first five bytes decide.
  const auto r = parse_client_hello(prefix(big, 5));
  CHECK(r.status == ClientHelloStatus::kMalformed);
  CHECK(std::string(r.reason) == "tls: ClientHello is larger than 16 KiB");

  // Split into records that are each small: the handshake header decides.
  const Bytes split = split_records(big, {1000});
  const auto s = parse_client_hello(prefix(split, 5 + 4));
  CHECK(std::string(s.reason) == "tls: ClientHello is larger than 16 KiB");

  // Just under the bound is fine.
  const Bytes fits = handmade_client_hello(
      concat({sni_extension("example.com"), extension(0x0015, Bytes(kMaxClientHelloBytes - 5 - 4 - 41 - 2 - 20 - 4))}));
  CHECK(fits.size() == kMaxClientHelloBytes);
  const auto f = parse_client_hello(fits);
  CHECK(f.status == ClientHelloStatus::kComplete);
  CHECK(f.hello.record_bytes == kMaxClientHelloBytes);
  // Exactly at the bound in one record, but over it once split in two: the
  // second record's header would pass the bound, and the first record says so.
  const Bytes over_split = split_records(fits, {fits.size() - 5 - 1});
  const auto os = parse_client_hello(prefix(over_split, 9));
  CHECK(std::string(os.reason) == "tls: ClientHello is larger than 16 KiB");

  Bytes over = handmade_client_hello(
      concat({sni_extension("example.com"), extension(0x0015, Bytes(kMaxClientHelloBytes - 5 - 4 - 41 - 2 - 20 - 3))}));
  CHECK(parse_client_hello(over).status == ClientHelloStatus::kMalformed);
}

TEST_CASE("client hello: empty ALPN names and odd supported_versions are malformed") {
  Bytes empty_name;
  ByteWriter w(empty_name);
  w.u16(1);
  w.u8(0);
  CHECK(parse_client_hello(handmade_client_hello(extension(kExtensionAlpn, empty_name))).status ==
        ClientHelloStatus::kMalformed);
  const Bytes odd = {std::byte{3}, std::byte{3}, std::byte{4}, std::byte{3}};
  CHECK(parse_client_hello(handmade_client_hello(extension(kExtensionSupportedVersions, odd))).status ==
        ClientHelloStatus::kMalformed);
}
