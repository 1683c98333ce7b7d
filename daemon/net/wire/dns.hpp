// DNS messages (RFC 1035), as the gateway's DNS server sees them: queries
// from the guest, and the answers it builds (from host aliases, or from the
// addresses the host's resolver found).
//
// Owns: the header, the question section and the three record sections. Names
// are read with compression; a compression pointer must point before every
// byte the name has read so far, which makes loops impossible, and a name may
// follow at most kMaxPointerJumps pointers. Names are at most 253 characters
// of text (255 bytes on the wire), labels at most 63. Records of type A and
// AAAA (class IN) are decoded to addresses, CNAME to its target name; every
// other type keeps its data as raw bytes. The names inside NS, PTR, MX, SOA
// and SRV data are expanded while parsing, so that raw data stays valid
// outside the message it came from. Bytes after the last record are ignored.
//
// Names are text, dot-separated, without the trailing dot; the root is "".
// So that the text of a name is unambiguous for policy matching, a label in a
// question, an owner name or a CNAME target may hold only printable ASCII
// other than '.' and '\'; a message with any other is refused. Case is kept
// as sent (resolvers check that answers echo it).
//
// Emit writes no compression. It fails, leaving `out` as it was, when a name
// is not valid or the message would exceed 65535 bytes.
//
// Deliberately not done: EDNS(0) interpretation (the OPT record is kept as a
// raw record), DNSSEC, zone transfer, TCP framing (the 2-byte length prefix).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/net/wire/address.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

enum class DnsType : std::uint16_t {
  kA = 1,
  kNs = 2,
  kCname = 5,
  kSoa = 6,
  kPtr = 12,
  kMx = 15,
  kTxt = 16,
  kAaaa = 28,
  kSrv = 33,
  kOpt = 41,
  kSvcb = 64,
  kHttps = 65,
  kAny = 255,
};

inline constexpr std::uint16_t kDnsClassIn = 1;

enum class DnsRcode : std::uint8_t {
  kNoError = 0,
  kFormatError = 1,
  kServerFailure = 2,
  kNameError = 3,  // NXDOMAIN
  kNotImplemented = 4,
  kRefused = 5,
};

struct DnsQuestion {
  std::string name;
  DnsType type = DnsType::kA;
  std::uint16_t dns_class = kDnsClassIn;

  friend bool operator==(const DnsQuestion&, const DnsQuestion&) = default;
};

// Record data: raw bytes (any type not decoded), an address (A, AAAA), or a
// name (CNAME target).
using DnsRdata = std::variant<Bytes, Ipv4Address, Ipv6Address, std::string>;

struct DnsRecord {
  std::string name;
  DnsType type = DnsType::kA;
  std::uint16_t dns_class = kDnsClassIn;
  std::uint32_t ttl = 0;
  DnsRdata data;

  friend bool operator==(const DnsRecord&, const DnsRecord&) = default;
};

struct DnsRepr {
  static constexpr std::uint16_t kPort = 53;
  static constexpr std::size_t kHeaderLength = 12;
  static constexpr std::size_t kMaxNameLength = 253;  // text, without the trailing dot
  static constexpr std::size_t kMaxLabelLength = 63;
  static constexpr int kMaxPointerJumps = 32;
  static constexpr std::size_t kMaxMessageLength = 0xffff;

  std::uint16_t id = 0;
  bool response = false;
  std::uint8_t opcode = 0;  // 0: standard query
  bool authoritative = false;
  bool truncated = false;
  bool recursion_desired = false;
  bool recursion_available = false;
  bool authentic_data = false;
  bool checking_disabled = false;
  DnsRcode rcode = DnsRcode::kNoError;  // values above 5 are kept as they are
  std::vector<DnsQuestion> questions;
  std::vector<DnsRecord> answers;
  std::vector<DnsRecord> authorities;
  std::vector<DnsRecord> additionals;

  static Expected<DnsRepr> parse(ByteSpan message);
  Expected<void> emit(Bytes& out) const;

  friend bool operator==(const DnsRepr&, const DnsRepr&) = default;
};

// Whether `name` (text form, a trailing dot allowed) can be emitted.
bool is_valid_dns_name(std::string_view name);

}  // namespace sandboxd::net::wire
