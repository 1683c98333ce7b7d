// The TLS ClientHello (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2), as
// the interception layer sees the first bytes a guest sends on a TLS flow:
// enough to learn which name the guest wants (SNI, RFC 6066), which
// application protocols it offers (ALPN, RFC 7301) and which versions it
// speaks, before anything is sent upstream.
//
// Owns: reassembling the ClientHello from one or more TLS records (the
// handshake message may be split across records, and the records may arrive
// in pieces), the ClientHello's own framing, and the extensions named below.
// Everything is bounded: the records holding the ClientHello may take at most
// kMaxClientHelloBytes in total, so a caller never buffers more than that
// while it waits.
//
// parse_client_hello is pure and keeps no state: the caller buffers what has
// arrived and calls it again when more has. Its answer is one of
//   kNeedMore   the bytes so far are a correct beginning; `needed` says how
//               many bytes in total must be buffered before another call can
//               answer differently (calling earlier is harmless but wasted);
//   kNotTls     the first record's header is not that of a TLS handshake
//               record (type 22, version 0x0301..0x0304): HTTP, SSH, or
//               anything else. The caller closes the flow;
//   kMalformed  it is TLS, but the records or the ClientHello break the
//               rules, or it is larger than the bound;
//   kComplete   the ClientHello, and how many bytes of records it took.
// An answer other than kNeedMore depends only on the bytes it was decided
// from: more bytes after them never change it (the fuzz target checks this).
//
// Rules enforced beyond plain framing: records after the first must also be
// handshake records (no interleaving, RFC 8446 section 5.1), none may be
// empty, the last record must end where the ClientHello ends (a client sends
// nothing else before the server answers), the extension block must fill the
// message exactly, no extension may appear twice, and pre_shared_key must be
// the last one (RFC 8446 section 4.2.11).
//
// Extensions read: server_name (0), ALPN (16), supported_versions (43); the
// presence of encrypted_client_hello (0xfe0d) is noted, since then the SNI is
// only the outer, public name. Every other extension, GREASE values
// (RFC 8701) included, is skipped by its length.
//
// The SNI host_name is lower-cased (ASCII), checked with
// net::wire::is_valid_dns_name (label and name lengths), and must consist of
// letters, digits, '-', '_' and '.' only. A name with a trailing dot, an IP
// literal (RFC 6066 forbids both), a name whose last label is numeric (which
// URL parsers read as an IPv4 address) or any other invalid name is reported
// as such rather than dropped, so the policy can refuse it knowingly.
//
// Deliberately not done: SSLv2-compatible hellos (kNotTls), cipher suite and
// group interpretation, ECH decryption, anything after the ClientHello.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::tls {

// The most bytes of records a ClientHello may take, headers included.
inline constexpr std::size_t kMaxClientHelloBytes = 16 * 1024;

inline constexpr std::uint8_t kContentTypeHandshake = 22;
inline constexpr std::uint8_t kHandshakeTypeClientHello = 1;
inline constexpr std::size_t kRecordHeaderLength = 5;
inline constexpr std::size_t kHandshakeHeaderLength = 4;

inline constexpr std::uint16_t kExtensionServerName = 0;
inline constexpr std::uint16_t kExtensionAlpn = 16;
inline constexpr std::uint16_t kExtensionPreSharedKey = 41;
inline constexpr std::uint16_t kExtensionSupportedVersions = 43;
inline constexpr std::uint16_t kExtensionEncryptedClientHello = 0xfe0d;

enum class SniStatus : std::uint8_t {
  kAbsent,     // no server_name extension, or no host_name in it
  kHostName,   // `sni` holds a valid, lower-cased DNS name
  kIpLiteral,  // `sni` holds an IPv4 or IPv6 literal (lower-cased)
  kInvalid,    // not a usable name; `sni` is empty, `sni_error` says why
};

struct ClientHello {
  std::uint16_t legacy_version = 0;  // 0x0303 for TLS 1.2 and 1.3
  SniStatus sni_status = SniStatus::kAbsent;
  std::string sni;
  const char* sni_error = "";  // a string literal; set when kInvalid
  // As offered, in the client's order; empty when the extension is absent
  // (a present list is never empty).
  std::vector<std::string> alpn;
  // As offered, GREASE values included; nullopt when the extension is absent.
  std::optional<std::vector<std::uint16_t>> supported_versions;
  bool offers_encrypted_client_hello = false;
  // Bytes of the records that held the ClientHello, headers included.
  std::size_t record_bytes = 0;

  bool sni_absent() const { return sni_status == SniStatus::kAbsent; }

  friend bool operator==(const ClientHello& a, const ClientHello& b);
};

// The body of a ClientHello handshake message (after its 4-byte header).
// record_bytes is left 0.
Expected<ClientHello> parse_client_hello_message(ByteSpan body);

enum class ClientHelloStatus : std::uint8_t { kNeedMore, kNotTls, kMalformed, kComplete };

struct ClientHelloResult {
  ClientHelloStatus status = ClientHelloStatus::kNeedMore;
  std::size_t needed = 0;   // kNeedMore: total bytes to buffer before retrying
  const char* reason = "";  // kNotTls, kMalformed: a string literal
  ClientHello hello;        // kComplete

  friend bool operator==(const ClientHelloResult& a, const ClientHelloResult& b);
};

// The first bytes of a flow, as buffered so far.
ClientHelloResult parse_client_hello(ByteSpan buffered);

// Lower-cases and classifies an SNI host_name as sent (also usable on names
// from elsewhere that must follow the same rules).
struct ClassifiedName {
  SniStatus status = SniStatus::kInvalid;
  std::string name;
  const char* error = "";
};
ClassifiedName classify_server_name(std::string_view raw);

}  // namespace sandboxd::net::tls
