// A sandbox's network policy: the rules that say where its flows may go.
//
// The same document arrives in sandbox.create's `network` member, in
// `sandboxd-host run --policy FILE` and as the daemon's default
// (`network_policy` in its config); policy_json.hpp reads and writes it,
// evaluate.hpp decides with it. This header is only the model.
//
// A rule names its destination either by host name (`host`: exact, `*.suffix`
// for names under a suffix, or `*` for every name) or by address (`address`:
// an IPv4 address or CIDR range); it may narrow that by ports, schemes and,
// for HTTP(S), methods and path prefixes; and it gives a verdict. The first
// rule that matches decides; when none does, the flow is denied.
//
// Two defaults keep the door shut where a loose rule would open it:
//   - A rule without `ports` covers every port except 53 (DNS) and 853 (DNS
//     over TLS): a resolver other than the sandbox's own is reached only
//     through a rule that names its port.
//   - A rule without `schemes` covers tcp, http and https, never udp (QUIC
//     and other datagram traffic need a rule that says udp).
// And addresses outside the public internet (address_class.hpp) are refused
// unless the rule that allows the flow is an address rule containing them:
// a host rule never opens loopback, private, link-local or metadata
// addresses, whatever the name resolves to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/net/wire/address.hpp"
#include "protocol/enum_names.hpp"

namespace sandboxd::policy {

namespace wire = net::wire;

enum class Verdict : std::uint8_t { kAllow, kDeny, kAsk };
inline constexpr auto kVerdictNames = make_enum_names(EnumName<Verdict>{Verdict::kAllow, "allow"},
                                                      EnumName<Verdict>{Verdict::kDeny, "deny"},
                                                      EnumName<Verdict>{Verdict::kAsk, "ask"});
inline std::string_view to_string(Verdict v) { return kVerdictNames.name(v); }

enum class Scheme : std::uint8_t { kTcp, kUdp, kHttp, kHttps };
inline constexpr auto kSchemeNames = make_enum_names(
    EnumName<Scheme>{Scheme::kTcp, "tcp"}, EnumName<Scheme>{Scheme::kUdp, "udp"},
    EnumName<Scheme>{Scheme::kHttp, "http"}, EnumName<Scheme>{Scheme::kHttps, "https"});
inline std::string_view to_string(Scheme s) { return kSchemeNames.name(s); }

// What happens to TLS on a flow a rule allows: terminated and re-encrypted
// by the daemon (so HTTP rules and secrets apply), or relayed untouched,
// decided by the SNI alone.
enum class TlsHandling : std::uint8_t { kIntercept, kPassthrough };
inline constexpr auto kTlsHandlingNames = make_enum_names(EnumName<TlsHandling>{TlsHandling::kIntercept, "intercept"},
                                                          EnumName<TlsHandling>{TlsHandling::kPassthrough, "passthrough"});
inline std::string_view to_string(TlsHandling t) { return kTlsHandlingNames.name(t); }

// What the sandbox's DNS answers for a name no rule could allow.
enum class DeniedNameAnswer : std::uint8_t { kNxdomain, kRefused };
inline constexpr auto kDeniedNameAnswerNames = make_enum_names(
    EnumName<DeniedNameAnswer>{DeniedNameAnswer::kNxdomain, "nxdomain"},
    EnumName<DeniedNameAnswer>{DeniedNameAnswer::kRefused, "refused"});
inline std::string_view to_string(DeniedNameAnswer a) { return kDeniedNameAnswerNames.name(a); }

// "example.com" (exactly that name), "*.example.com" (any name under it, not
// example.com itself) or "*" (every name). Stored lower case, no trailing dot.
struct HostPattern {
  enum class Kind : std::uint8_t { kExact, kSuffix, kAny };
  Kind kind = Kind::kExact;
  std::string name;  // kExact: the name; kSuffix: the suffix without "*."; kAny: empty

  // `host` as the DNS or SNI gave it: any case, a trailing dot allowed.
  bool matches(std::string_view host) const;
  std::string to_string() const;  // the pattern as written: "*.example.com"
  friend bool operator==(const HostPattern&, const HostPattern&) = default;
};

// An IPv4 range: base/prefix with the host bits of base zero.
struct AddressRange {
  wire::Ipv4Address base;
  std::uint8_t prefix = 32;

  bool contains(wire::Ipv4Address a) const;
  std::string to_string() const;  // "10.0.0.0/8", or "10.0.0.1" for a /32
  friend bool operator==(const AddressRange&, const AddressRange&) = default;
};

struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;  // inclusive
  bool contains(std::uint16_t port) const { return first <= port && port <= last; }
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

struct Rule {
  // Exactly one of host and address is set.
  std::optional<HostPattern> host;
  std::optional<AddressRange> address;
  std::vector<PortRange> ports;            // empty: every port but 53 and 853
  std::vector<Scheme> schemes;             // empty: tcp, http, https
  std::vector<std::string> methods;        // upper case; empty: any (HTTP(S) rules only)
  std::vector<std::string> path_prefixes;  // each starts with '/'; empty: any
  Verdict verdict = Verdict::kDeny;
  TlsHandling tls = TlsHandling::kIntercept;
  std::string label;  // the document's "name", or empty; for audit records

  // Whether the rule looks at requests (methods or path prefixes), so a flow
  // it matches can be decided only per HTTP request.
  bool has_request_conditions() const { return !methods.empty() || !path_prefixes.empty(); }
  friend bool operator==(const Rule&, const Rule&) = default;
};

struct NetworkPolicy {
  static constexpr std::size_t kMaxRules = 256;
  static constexpr std::size_t kMaxListItems = 64;  // ports, schemes, methods, paths per rule

  std::vector<Rule> rules;
  DeniedNameAnswer denied_names = DeniedNameAnswer::kNxdomain;

  // Nothing allowed: what a sandbox gets when nobody says otherwise.
  static NetworkPolicy deny_all() { return {}; }
  // Every public address on any TCP port but 53 and 853, by name or by IP
  // literal; nothing private. The old `egress: "allow-all"`.
  static NetworkPolicy allow_public();

  friend bool operator==(const NetworkPolicy&, const NetworkPolicy&) = default;
};

}  // namespace sandboxd::policy
