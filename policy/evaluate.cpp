#include "policy/evaluate.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace sandboxd::policy {

namespace {

bool is_http(Scheme s) { return s == Scheme::kHttp || s == Scheme::kHttps; }

constexpr std::array<Scheme, 3> kDefaultSchemes{Scheme::kTcp, Scheme::kHttp, Scheme::kHttps};
// Every port but 53 and 853; port 0 is no destination, so coverage starts at 1.
constexpr std::array<PortRange, 3> kDefaultPorts{PortRange{1, 52}, PortRange{54, 852}, PortRange{854, 65535}};

bool port_matches(const Rule& r, std::uint16_t port) {
  if (r.ports.empty()) return port != 53 && port != 853;
  return std::any_of(r.ports.begin(), r.ports.end(), [&](const PortRange& p) { return p.contains(port); });
}

bool scheme_matches(const Rule& r, Scheme s) {
  if (r.schemes.empty()) return s != Scheme::kUdp;
  return std::find(r.schemes.begin(), r.schemes.end(), s) != r.schemes.end();
}

bool target_matches(const Rule& r, const FlowFacts& f) {
  if (r.host) return r.host->matches(f.host);
  if (r.address) return r.address->contains(f.address);
  return false;
}

bool request_matches(const Rule& r, const HttpRequestFacts& q) {
  const bool method_ok =
      r.methods.empty() || std::find(r.methods.begin(), r.methods.end(), q.method) != r.methods.end();
  const bool path_ok = r.path_prefixes.empty() || std::any_of(r.path_prefixes.begin(), r.path_prefixes.end(),
                                                              [&](const std::string& p) { return q.path.starts_with(p); });
  return method_ok && path_ok;
}

std::string rule_name(const Rule& r, std::size_t i) {
  if (!r.label.empty()) return "\"" + r.label + "\" (rule " + std::to_string(i) + ")";
  std::string pattern = r.host ? r.host->to_string() : r.address ? r.address->to_string() : "?";
  return "rule " + std::to_string(i) + " (" + pattern + ")";
}

std::string_view verb(Verdict v) {
  switch (v) {
    case Verdict::kAllow: return "allows";
    case Verdict::kAsk: return "asks";
    case Verdict::kDeny: break;
  }
  return "denies";
}

int permissiveness(Verdict v) {
  switch (v) {
    case Verdict::kAllow: return 2;
    case Verdict::kAsk: return 1;
    case Verdict::kDeny: break;
  }
  return 0;
}

// The verdict a rule that matched gives, once the address class has had its
// say (not for an address the daemon's operator chose: FlowFacts).
Verdict effective_verdict(const Rule& r, wire::Ipv4Address a, bool operator_address = false) {
  if (r.verdict == Verdict::kDeny) return Verdict::kDeny;
  if (operator_address || classify(a) == AddressClass::kPublic) return r.verdict;
  return r.address && range_opens(*r.address, a) ? r.verdict : Verdict::kDeny;
}

Decision rule_decision(const Rule& r, std::size_t i, wire::Ipv4Address a, bool operator_address) {
  Decision d;
  d.verdict = effective_verdict(r, a, operator_address);
  if (d.verdict == Verdict::kDeny && r.verdict != Verdict::kDeny) {
    const AddressClass c = classify(a);
    d.reason = a.to_string() + " is a " + std::string(to_string(c)) + " address";
    if (!may_be_named(c)) {
      d.reason += ", never reachable; " + rule_name(r, i) + " matched";
    } else {
      const auto block = class_block(a);
      d.reason += " that only an address rule inside " + (block ? block->to_string() : std::string("its class")) +
                  " opens, and " + rule_name(r, i) + " is not one";
    }
    return d;  // decided by the address class, not the rule
  }
  d.rule = i;
  d.reason = rule_name(r, i) + " " + std::string(verb(r.verdict));
  if (d.verdict != Verdict::kDeny) d.tls = r.tls;
  return d;
}

Decision default_decision(const FlowFacts& f) {
  Decision d;
  std::string what;
  if (f.request) what = std::string(f.request->method) + " " + std::string(f.request->path) + " on ";
  what += std::string(to_string(f.scheme)) + " to ";
  what += f.host.empty() ? f.address.to_string() : std::string(f.host) + " (" + f.address.to_string() + ")";
  what += " port " + std::to_string(f.port);
  d.reason = "no rule matches " + what + "; denied by default";
  return d;
}

bool flow_matches(const Rule& r, const FlowFacts& f) {
  return target_matches(r, f) && port_matches(r, f.port) && scheme_matches(r, f.scheme);
}

// Connection stage, rules[first] matched but looks at requests: the most
// permissive decision any request could get, from that rule and the ones
// after it a request could still reach.
Decision per_request_decision(const NetworkPolicy& policy, const FlowFacts& flow, std::size_t first) {
  const Decision first_decision = rule_decision(policy.rules[first], first, flow.address, flow.operator_address);
  Decision best = first_decision;
  for (std::size_t j = first + 1; j < policy.rules.size() && best.verdict != Verdict::kAllow; ++j) {
    const Rule& r = policy.rules[j];
    if (!flow_matches(r, flow)) continue;
    Decision d = rule_decision(r, j, flow.address, flow.operator_address);
    if (permissiveness(d.verdict) > permissiveness(best.verdict)) best = std::move(d);
    if (!r.has_request_conditions()) break;  // every request the earlier rules left stops here
  }
  if (best.verdict == Verdict::kDeny) {
    Decision d = first_decision;
    d.reason = "no request on this flow could be allowed: " + d.reason;
    return d;
  }
  const std::string first_name = rule_name(policy.rules[first], first);
  if (best.rule == first) {
    best.reason += " the requests it matches; each request is decided on its own";
  } else {
    best.reason += "; " + first_name + " looks at requests, so each request is decided on its own";
  }
  best.per_request = true;
  best.tls = TlsHandling::kIntercept;  // requests are seen only inside the TLS
  return best;
}

// Port coverage per scheme of the deny rules seen so far, so that a later
// allow they shadow completely is known to be unreachable.
class DeniedSoFar {
 public:
  void add(const Rule& r) {
    for_each_scheme(r, [&](Scheme s) {
      auto& list = denied_[static_cast<std::size_t>(s)];
      for_each_port_range(r, [&](PortRange p) { list.push_back(p); });
    });
  }

  bool covers(const Rule& r) const {
    bool all = true;
    for_each_scheme(r, [&](Scheme s) {
      const auto& list = denied_[static_cast<std::size_t>(s)];
      for_each_port_range(r, [&](PortRange p) { all = all && covered(list, p); });
    });
    return all;
  }

 private:
  template <class F>
  static void for_each_scheme(const Rule& r, F f) {
    if (r.schemes.empty()) {
      for (Scheme s : kDefaultSchemes) f(s);
    } else {
      for (Scheme s : r.schemes) f(s);
    }
  }
  template <class F>
  static void for_each_port_range(const Rule& r, F f) {
    if (r.ports.empty()) {
      for (PortRange p : kDefaultPorts) f(p);
    } else {
      for (PortRange p : r.ports) f(p);
    }
  }
  static bool covered(std::vector<PortRange> list, PortRange want) {
    std::sort(list.begin(), list.end(), [](PortRange a, PortRange b) { return a.first < b.first; });
    std::uint32_t need = want.first;
    for (PortRange p : list) {
      if (p.first > need) break;
      if (p.last >= need) need = std::uint32_t{p.last} + 1;
      if (need > want.last) return true;
    }
    return need > want.last;
  }

  std::array<std::vector<PortRange>, 4> denied_;
};

// Whether some flow (some port, scheme and request) that `matches` picks
// out could reach a rule that does not deny it, in first-match order.
template <class Matches, class Effective>
bool some_flow_may_pass(const NetworkPolicy& policy, Matches matches, Effective effective) {
  DeniedSoFar denied;
  for (const Rule& r : policy.rules) {
    if (!matches(r)) continue;
    if (effective(r) != Verdict::kDeny) {
      if (!denied.covers(r)) return true;
      continue;
    }
    if (!r.has_request_conditions()) denied.add(r);
  }
  return false;
}

}  // namespace

Decision evaluate(const NetworkPolicy& policy, const FlowFacts& flow) {
  for (std::size_t i = 0; i < policy.rules.size(); ++i) {
    const Rule& r = policy.rules[i];
    if (!flow_matches(r, flow)) continue;
    if (r.has_request_conditions()) {
      if (flow.request) {
        if (!request_matches(r, *flow.request)) continue;
      } else {
        // A flow that is not HTTP(S) never brings a request to check.
        if (!is_http(flow.scheme)) continue;
        return per_request_decision(policy, flow, i);
      }
    }
    return rule_decision(r, i, flow.address, flow.operator_address);
  }
  return default_decision(flow);
}

bool name_may_be_allowed(const NetworkPolicy& policy, std::string_view host) {
  return some_flow_may_pass(
      policy, [&](const Rule& r) { return r.host && r.host->matches(host); },
      [](const Rule& r) { return r.verdict; });
}

bool answer_address_allowed(const NetworkPolicy& policy, std::string_view host, wire::Ipv4Address address) {
  const AddressClass c = classify(address);
  if (c == AddressClass::kPublic) return true;
  if (!may_be_named(c)) return false;
  return some_flow_may_pass(
      policy,
      [&](const Rule& r) { return (r.host && r.host->matches(host)) || (r.address && r.address->contains(address)); },
      [&](const Rule& r) { return effective_verdict(r, address); });
}

}  // namespace sandboxd::policy
