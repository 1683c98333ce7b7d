// The decision for one flow or one HTTP request under a NetworkPolicy: a
// pure function, table-tested, the only place a rule is interpreted.
//
// A flow is known by the name the daemon resolved or verified for it (the
// sandbox's own DNS answer, or the TLS SNI), or by no name at all (an IP
// literal), and always by the address it goes to. Host rules match the name
// only; address rules match the address only. Rules are tried in order and
// the first that matches decides; none matching is a deny.
//
// Two stages:
//   - The connection (`request` unset): a rule with methods or path
//     prefixes matches only if no request is needed to tell, so the first
//     rule that might match and has request conditions makes the decision
//     `per_request`: the flow goes on to the HTTP path, which asks again for
//     each request. The verdict returned then is the most permissive one a
//     request could still get, so a connection is not refused that some
//     request on it would be allowed. When no request could be allowed the
//     connection is simply denied (`per_request` false); when one could, the
//     TLS handling is intercept, since requests are seen only inside it.
//     A flow whose scheme is tcp or udp never brings a request, so a rule
//     with request conditions does not match it.
//   - Each HTTP request (`request` set, scheme http or https): every
//     condition is checked.
// Address classes (address_class.hpp) are checked after the rule matched:
// a non-public destination is allowed or asked about only if the rule is
// an address rule whose whole range lies in that address's class; loopback,
// multicast, unspecified and broadcast never are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/address_class.hpp"
#include "policy/network_policy.hpp"

namespace sandboxd::policy {

struct HttpRequestFacts {
  std::string_view method;  // as sent; compared case-sensitively, upper case expected
  std::string_view path;    // the request target's path, starting with '/'
};

struct FlowFacts {
  std::string_view host;  // lower or any case, trailing dot allowed; empty: no name known
  wire::Ipv4Address address;
  std::uint16_t port = 0;
  Scheme scheme = Scheme::kTcp;
  std::optional<HttpRequestFacts> request;
  // The address was chosen by the daemon's operator (a host alias), not by
  // the guest or a resolver: the address-class check is skipped, the rules
  // are not.
  bool operator_address = false;
};

struct Decision {
  Verdict verdict = Verdict::kDeny;
  std::optional<std::size_t> rule;  // index of the deciding rule; unset: the default or an address class
  // For a person and the audit record: names the deciding rule as
  // "rule 2 (*.github.com)" (the index into rules, as in the JSON paths) or
  // by its label, "\"github\" (rule 2)"; or says the default or the address
  // class decided: "no rule matches ...", "10.0.0.1 is a private address ...".
  std::string reason;
  TlsHandling tls = TlsHandling::kIntercept;  // the deciding rule's, when it allows or asks
  bool per_request = false;                   // connection stage: the HTTP path must ask again per request

  bool allows() const { return verdict == Verdict::kAllow; }
};

Decision evaluate(const NetworkPolicy& policy, const FlowFacts& flow);

// Whether some flow to `host` could be allowed or asked about: the DNS
// filter resolves exactly these names on the host and answers every other
// name without any lookup. Host rules only: an address rule never makes a
// name resolvable.
bool name_may_be_allowed(const NetworkPolicy& policy, std::string_view host);

// Whether an address the host's resolver returned for `host` may be given
// to the guest: a public address, or one an address rule that allows or
// asks names (as above). Answers that fail this are left out, so a name
// that rebinds to a private or metadata address resolves to nothing.
// Rule order counts as in evaluate: a host rule for `host` that comes first
// and matches the same ports and schemes decides every flow to the address
// (and refuses it, being no address rule), so the address rule must come
// before it.
bool answer_address_allowed(const NetworkPolicy& policy, std::string_view host, wire::Ipv4Address address);

}  // namespace sandboxd::policy
