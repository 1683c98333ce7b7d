#include "daemon/net/tls/client_hello.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

#include "daemon/net/wire/address.hpp"
#include "daemon/net/wire/dns.hpp"

namespace sandboxd::net::tls {

namespace {

std::uint8_t byte_at(ByteSpan b, std::size_t i) { return static_cast<std::uint8_t>(b[i]); }

bool same_text(const char* a, const char* b) { return std::string_view(a) == std::string_view(b); }

ClientHelloResult need(std::size_t needed) { return {ClientHelloStatus::kNeedMore, needed, "", {}}; }
ClientHelloResult not_tls(const char* reason) { return {ClientHelloStatus::kNotTls, 0, reason, {}}; }
ClientHelloResult malformed(const char* reason) { return {ClientHelloStatus::kMalformed, 0, reason, {}}; }

Expected<void> parse_server_name(ByteSpan data, ClientHello& hello) {
  ByteReader r(data);
  const std::size_t list_length = r.u16();
  if (!r.ok() || list_length != r.remaining()) {
    return parse_error("tls: server_name list length does not match its extension");
  }
  if (list_length == 0) return parse_error("tls: server_name list is empty");
  bool seen_host_name = false;
  while (!r.at_end()) {
    const std::uint8_t name_type = r.u8();
    const std::size_t name_length = r.u16();
    const ByteSpan name = r.take(name_length);
    if (!r.ok()) return parse_error("tls: server_name entry runs past its list");
    // Other name types have never been defined; every one is length-prefixed
    // in practice, so they are skipped rather than refused.
    if (name_type != 0) continue;
    if (seen_host_name) return parse_error("tls: server_name holds two host_names");
    if (name.empty()) return parse_error("tls: server_name host_name is empty");
    seen_host_name = true;
    ClassifiedName classified = classify_server_name(as_chars(name));
    hello.sni_status = classified.status;
    hello.sni = std::move(classified.name);
    hello.sni_error = classified.error;
  }
  return {};
}

Expected<void> parse_alpn(ByteSpan data, ClientHello& hello) {
  ByteReader r(data);
  const std::size_t list_length = r.u16();
  if (!r.ok() || list_length != r.remaining()) return parse_error("tls: ALPN list length does not match its extension");
  if (list_length == 0) return parse_error("tls: ALPN list is empty");
  while (!r.at_end()) {
    const std::size_t length = r.u8();
    const ByteSpan name = r.take(length);
    if (!r.ok()) return parse_error("tls: ALPN protocol name runs past its list");
    if (name.empty()) return parse_error("tls: ALPN protocol name is empty");
    hello.alpn.emplace_back(as_chars(name));
  }
  return {};
}

Expected<void> parse_supported_versions(ByteSpan data, ClientHello& hello) {
  ByteReader r(data);
  const std::size_t length = r.u8();
  if (!r.ok() || length != r.remaining()) {
    return parse_error("tls: supported_versions length does not match its extension");
  }
  if (length == 0 || length % 2 != 0)
    return parse_error("tls: supported_versions length is not a positive even number");
  std::vector<std::uint16_t> versions;
  versions.reserve(length / 2);
  while (!r.at_end()) versions.push_back(r.u16());
  hello.supported_versions = std::move(versions);
  return {};
}

bool is_ipv6_literal(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.find(':') == std::string_view::npos || text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string copy(text);  // inet_pton wants a terminated string
  in6_addr address{};
  return inet_pton(AF_INET6, copy.c_str(), &address) == 1;
}

// WHATWG URL parsing reads a host whose last label is a number (decimal, or
// hex with 0x) as an IPv4 address, in any of its odd forms ("1.2.3",
// "010.0.0.1", "0x7f.1"): such a name is not a DNS name anyone can own.
bool looks_numeric(std::string_view name) {
  const std::size_t dot = name.rfind('.');
  std::string_view last = dot == std::string_view::npos ? name : name.substr(dot + 1);
  if (last.empty()) return false;
  if (last.size() > 2 && last[0] == '0' && last[1] == 'x') {
    last.remove_prefix(2);
    return std::all_of(last.begin(), last.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  }
  return std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// DNS itself allows any byte in a label, but a host name (RFC 952, RFC 1123,
// and IDNA's A-labels) is letters, digits and '-'; '_' is common enough in
// internal names to keep. Anything else ('*', ':', '/', ',') has no business
// in a name a policy matches or a certificate is minted for.
bool is_host_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

}  // namespace

ClassifiedName classify_server_name(std::string_view raw) {
  ClassifiedName out;
  if (raw.empty()) {
    out.error = "tls: host_name is empty";
    return out;
  }
  for (char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      out.error = "tls: host_name holds a byte that is not printable ASCII";
      return out;
    }
  }
  std::string name(raw);
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (wire::Ipv4Address::parse(name).has_value() || is_ipv6_literal(name)) {
    out.status = SniStatus::kIpLiteral;
    out.name = std::move(name);
    return out;
  }
  if (name.back() == '.') {
    out.error = "tls: host_name ends with a dot";
  } else if (looks_numeric(name)) {
    out.error = "tls: host_name is numeric but not an IPv4 address";
  } else if (!wire::is_valid_dns_name(name)) {
    out.error = "tls: host_name is not a valid DNS name";
  } else if (!std::all_of(name.begin(), name.end(), is_host_name_char)) {
    out.error = "tls: host_name holds a character other than letters, digits, '-', '_' and '.'";
  } else {
    out.status = SniStatus::kHostName;
    out.name = std::move(name);
  }
  return out;
}

bool operator==(const ClientHello& a, const ClientHello& b) {
  return a.legacy_version == b.legacy_version && a.sni_status == b.sni_status && a.sni == b.sni &&
         same_text(a.sni_error, b.sni_error) && a.alpn == b.alpn && a.supported_versions == b.supported_versions &&
         a.offers_encrypted_client_hello == b.offers_encrypted_client_hello && a.record_bytes == b.record_bytes;
}

bool operator==(const ClientHelloResult& a, const ClientHelloResult& b) {
  return a.status == b.status && a.needed == b.needed && same_text(a.reason, b.reason) && a.hello == b.hello;
}

Expected<ClientHello> parse_client_hello_message(ByteSpan body) {
  ByteReader r(body);
  ClientHello hello;
  hello.legacy_version = r.u16();
  r.skip(32);  // random
  const std::size_t session_id_length = r.u8();
  if (r.ok() && session_id_length > 32) return parse_error("tls: legacy_session_id is longer than 32 bytes");
  r.skip(session_id_length);
  const std::size_t cipher_suites_length = r.u16();
  if (r.ok() && (cipher_suites_length == 0 || cipher_suites_length % 2 != 0)) {
    return parse_error("tls: cipher_suites length is not a positive even number");
  }
  r.skip(cipher_suites_length);
  const std::size_t compression_length = r.u8();
  if (r.ok() && compression_length == 0) return parse_error("tls: compression_methods is empty");
  r.skip(compression_length);
  if (!r.ok()) return parse_error("tls: ClientHello is truncated");
  if (r.at_end()) return hello;  // no extensions at all (allowed before TLS 1.3)

  const std::size_t extensions_length = r.u16();
  if (!r.ok()) return parse_error("tls: extension block length is truncated");
  if (extensions_length > r.remaining()) return parse_error("tls: extension block runs past the ClientHello");
  if (extensions_length < r.remaining()) return parse_error("tls: bytes after the extension block");
  ByteReader e(r.take(extensions_length));

  std::vector<std::uint16_t> seen;
  bool after_pre_shared_key = false;
  while (!e.at_end()) {
    if (e.remaining() < 4) return parse_error("tls: trailing bytes in the extension block");
    const std::uint16_t type = e.u16();
    const std::size_t length = e.u16();
    if (length > e.remaining()) return parse_error("tls: extension runs past the extension block");
    const ByteSpan data = e.take(length);
    if (after_pre_shared_key) return parse_error("tls: pre_shared_key is not the last extension");
    seen.push_back(type);
    Expected<void> ok;
    switch (type) {
      case kExtensionServerName:
        ok = parse_server_name(data, hello);
        break;
      case kExtensionAlpn:
        ok = parse_alpn(data, hello);
        break;
      case kExtensionSupportedVersions:
        ok = parse_supported_versions(data, hello);
        break;
      case kExtensionEncryptedClientHello:
        hello.offers_encrypted_client_hello = true;
        break;
      case kExtensionPreSharedKey:
        after_pre_shared_key = true;
        break;
      default:
        break;
    }
    if (!ok) return Unexpected{ok.error()};
  }
  std::sort(seen.begin(), seen.end());
  if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) return parse_error("tls: an extension appears twice");
  return hello;
}

ClientHelloResult parse_client_hello(ByteSpan in) {
  // One pass over the record headers, copying nothing: every decision is taken
  // as soon as the bytes it needs are present, in the order of those bytes, so
  // a longer buffer never contradicts a shorter one. The message is copied
  // together only once it is complete and spans several records.
  std::size_t pos = 0;
  std::size_t records = 0;
  std::size_t message_held = 0;  // handshake bytes the records so far hold
  std::array<std::uint8_t, kHandshakeHeaderLength> header{};
  std::size_t header_held = 0;
  std::size_t message_length = 0;  // header included; 0 until the header is known

  for (;;) {
    const bool first = records == 0;
    const ByteSpan head = in.subspan(pos, std::min(kRecordHeaderLength, in.size() - pos));
    if (!head.empty() && byte_at(head, 0) != kContentTypeHandshake) {
      return first ? not_tls("tls: first record is not a handshake record")
                   : malformed("tls: a record of another type interrupts the ClientHello");
    }
    if (head.size() >= 2 && byte_at(head, 1) != 3) {
      return first ? not_tls("tls: first record's version is not TLS") : malformed("tls: record version is not TLS");
    }
    if (head.size() >= 3 && (byte_at(head, 2) < 1 || byte_at(head, 2) > 4)) {
      return first ? not_tls("tls: first record's version is not TLS 1.0 to 1.3")
                   : malformed("tls: record version is not TLS 1.0 to 1.3");
    }
    if (head.size() < kRecordHeaderLength) return need(pos + kRecordHeaderLength);

    const std::size_t length = (std::size_t{byte_at(head, 3)} << 8) | byte_at(head, 4);
    if (length == 0) return malformed("tls: empty handshake record");
    const std::size_t fragment = pos + kRecordHeaderLength;
    const std::size_t record_end = fragment + length;
    if (record_end > kMaxClientHelloBytes) return malformed("tls: ClientHello is larger than 16 KiB");
    ++records;

    const std::size_t available = std::min(length, in.size() - fragment);
    for (std::size_t i = 0; header_held < header.size() && i < available; ++i) {
      header[header_held++] = byte_at(in, fragment + i);
    }
    if (header_held >= 1 && header[0] != kHandshakeTypeClientHello) {
      return malformed("tls: first handshake message is not a ClientHello");
    }
    if (header_held == header.size() && message_length == 0) {
      message_length =
          kHandshakeHeaderLength + ((std::size_t{header[1]} << 16) | (std::size_t{header[2]} << 8) | header[3]);
    }
    message_held += length;
    if (message_length != 0) {
      if (message_held > message_length) return malformed("tls: a record holds bytes after the ClientHello");
      // The fewest bytes the records can take from here: the message, the
      // headers so far, and one more header if this record does not finish it.
      const std::size_t at_least =
          records * kRecordHeaderLength + message_length + (message_held < message_length ? kRecordHeaderLength : 0);
      if (at_least > kMaxClientHelloBytes) return malformed("tls: ClientHello is larger than 16 KiB");
    }
    if (in.size() < record_end) return need(record_end);
    if (message_length == 0 || message_held < message_length) {
      pos = record_end;
      continue;
    }

    Bytes joined;
    ByteSpan message;
    if (records == 1) {
      message = in.subspan(kRecordHeaderLength, length);
    } else {
      joined.reserve(message_length);
      for (std::size_t at = 0; at < record_end;) {
        const std::size_t n = (std::size_t{byte_at(in, at + 3)} << 8) | byte_at(in, at + 4);
        const ByteSpan part = in.subspan(at + kRecordHeaderLength, n);
        joined.insert(joined.end(), part.begin(), part.end());
        at += kRecordHeaderLength + n;
      }
      message = joined;
    }
    auto hello = parse_client_hello_message(message.subspan(kHandshakeHeaderLength));
    if (!hello) return malformed(hello.error().reason);
    ClientHelloResult out{ClientHelloStatus::kComplete, 0, "", std::move(*hello)};
    out.hello.record_bytes = record_end;
    return out;
  }
}

}  // namespace sandboxd::net::tls
