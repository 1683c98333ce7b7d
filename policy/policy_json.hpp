// The network policy's JSON form, read from hostile input (a WebSocket
// client, a file) and written back for the Sandbox object.
//
//   {"rules": [RULE, ...], "denied_names": "nxdomain" | "refused"}
//   RULE: {"host": "api.example.com" | "*.example.com" | "*"
//            or "address": "203.0.113.7" | "10.1.0.0/16" | "::ffff:10.1.2.3",
//          "ports": [443, "8000-8100"],            optional
//          "schemes": ["https", "http", "tcp", "udp"], optional
//          "methods": ["GET", "POST"],             optional, http/https only
//          "paths": ["/v1/", "/health"],           optional, http/https only
//          "verdict": "allow" | "deny" | "ask",    required
//          "tls": "intercept" | "passthrough",     optional, https rules
//          "name": "label for audit records"}      optional
//
// Every member is checked: unknown members, wrong types, empty lists, out
// of range ports, ranges with host bits set, bad host names, IPv6 addresses
// other than IPv4-mapped ones, methods or paths on a rule whose schemes are
// not only http/https, passthrough with methods or paths, more than
// NetworkPolicy::kMaxRules rules or kMaxListItems items in a list are
// refused with the member's path ("rules[3].ports[0]") and why. Also:
//   - "rules" is required ([] denies everything); a member given twice in
//     one object is refused (parse_policy only: a parsed value has lost it).
//   - Hosts are lower-cased and lose one trailing dot; they hold letters,
//     digits, '-', '_' and dots, '*' only as "*" or a leading "*."; an IP
//     address written as a host is refused (it is an "address").
//   - Ports are numbers 1..65535 or "first-last" strings, first <= last.
//   - Methods are RFC 9110 tokens and are refused in lower case, not
//     upper-cased: methods are case-sensitive, and "get" is not GET.
//   - Paths start with '/' and hold printable ASCII without spaces, '?' or
//     '#'; they are compared as written (no percent-decoding).
//   - "tls" only on rules whose schemes include https.
//   - "name" is 1..128 bytes without control characters.
// policy_to_json writes rules with every default left out, single ports
// as numbers and IPv4-mapped addresses as IPv4.
#pragma once

#include <boost/json/value.hpp>
#include <string>

#include "policy/network_policy.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::policy {

struct PolicyError {
  std::string path;     // where in the document: "rules[3].ports[0]", or "" for the whole document
  std::string message;  // why, for a person
  std::string to_string() const;  // "rules[3].ports[0]: port 70000 is out of range"
};

// From a parsed JSON value (sandbox.create's `network` member).
Expected<NetworkPolicy, PolicyError> policy_from_json(const boost::json::value& document);
// From bytes (a file, `--policy FILE`): at most kMaxDocumentBytes, strict
// JSON (no comments, no trailing commas, valid UTF-8, nesting at most 16
// deep), no duplicate members, then as above.
inline constexpr std::size_t kMaxDocumentBytes = 1 << 20;
Expected<NetworkPolicy, PolicyError> parse_policy(ByteSpan document);

// The canonical form: what policy_from_json reads back to an equal policy.
boost::json::value policy_to_json(const NetworkPolicy& policy);

}  // namespace sandboxd::policy
