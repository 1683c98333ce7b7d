#include "daemon/net/egress/egress_policy.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "daemon/net/wire/dns.hpp"

namespace sandboxd::net {
using wire::Ipv4Address;

namespace {

std::string normalized_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Destinations a flow never goes to, whatever the mode: they are not
// somewhere else on the network but this host, or nowhere.
std::string_view never_reachable(Ipv4Address a) {
  if (a.is_loopback()) return "the host's loopback is not reachable";
  if (a.is_unspecified() || a.octets[0] == 0) return "unspecified destination";
  if (a.is_multicast() || a.is_broadcast() || a.octets[0] >= 240) return "multicast, broadcast or reserved destination";
  return {};
}

}  // namespace

Expected<EgressMode, std::string> parse_egress_mode(std::string_view text) {
  if (auto mode = kEgressModeNames.parse(text)) return *mode;
  return Unexpected{"unknown egress mode '" + std::string(text) + "' (" + kEgressModeNames.choices() + ")"};
}

Expected<std::pair<std::string, Ipv4Address>, std::string> parse_host_alias(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos) return Unexpected{"host alias '" + std::string(text) + "': expected NAME=IP"};
  std::string name = normalized_name(text.substr(0, eq));
  if (name.empty() || !wire::is_valid_dns_name(name))
    return Unexpected{"host alias '" + std::string(text) + "': '" + name + "' is not a valid host name"};
  auto ip = Ipv4Address::parse(text.substr(eq + 1));
  if (!ip) return Unexpected{"host alias '" + std::string(text) + "': '" + std::string(text.substr(eq + 1)) + "' is not an IPv4 address"};
  return std::pair{name, *ip};
}

policy::NetworkPolicy policy_for_mode(EgressMode mode, const AliasList& aliases) {
  policy::NetworkPolicy out =
      mode == EgressMode::kAllowAll ? policy::NetworkPolicy::allow_public() : policy::NetworkPolicy::deny_all();
  std::vector<policy::Rule> alias_rules;
  for (const auto& [name, ip] : aliases) {
    policy::Rule rule;
    rule.host = policy::HostPattern{policy::HostPattern::Kind::kExact, normalized_name(name)};
    // Every port and protocol: the operator named the service.
    rule.ports = {policy::PortRange{1, 65535}};
    rule.schemes = {policy::Scheme::kTcp, policy::Scheme::kUdp, policy::Scheme::kHttp, policy::Scheme::kHttps};
    rule.verdict = policy::Verdict::kAllow;
    rule.label = "host alias";
    alias_rules.push_back(std::move(rule));
  }
  out.rules.insert(out.rules.begin(), alias_rules.begin(), alias_rules.end());
  return out;
}

Expected<EgressPolicy, std::string> EgressPolicy::make(policy::NetworkPolicy rules, const AliasList& aliases,
                                                       Ipv4Address alias_base, std::vector<Ipv4Address> host_addresses) {
  if (aliases.size() > kMaxAliases)
    return Unexpected{"too many host aliases (at most " + std::to_string(kMaxAliases) + ")"};
  EgressPolicy policy;
  policy.rules_ = std::move(rules);
  policy.host_addresses_ = std::move(host_addresses);
  std::uint32_t next = alias_base.to_u32();
  for (const auto& [name, host_ip] : aliases) {
    std::string n = normalized_name(name);
    if (!wire::is_valid_dns_name(n) || n.empty()) return Unexpected{"'" + name + "' is not a valid host name"};
    if (policy.resolve_alias(n)) return Unexpected{"host alias '" + n + "' is given twice"};
    policy.aliases_.push_back(HostAlias{n, host_ip, Ipv4Address::from_u32(next++)});
  }
  return policy;
}

EgressPolicy EgressPolicy::with_rules(policy::NetworkPolicy rules) const {
  EgressPolicy out = *this;
  out.rules_ = std::move(rules);
  return out;
}

EgressDecision EgressPolicy::decide(const FlowKey& key, policy::Scheme scheme, std::string_view name) const {
  policy::FlowFacts flow;
  flow.address = key.remote_ip;
  flow.port = key.remote_port;
  flow.scheme = scheme;
  Ipv4Address connect_to = key.remote_ip;
  const HostAlias* alias = nullptr;
  for (const HostAlias& a : aliases_) {
    if (a.guest_ip == key.remote_ip) alias = &a;
  }
  if (alias) {
    // An alias's address is known by the alias's name alone, whatever the
    // guest's DNS was told.
    flow.host = alias->name;
    flow.operator_address = true;
    connect_to = alias->host_ip;
  } else {
    flow.host = name;
    if (auto why = never_reachable(key.remote_ip); !why.empty()) return {false, {}, std::string(why), std::string(name)};
    if (std::find(host_addresses_.begin(), host_addresses_.end(), key.remote_ip) != host_addresses_.end())
      return {false, {}, "the host's own addresses are not reachable", std::string(name)};
  }
  policy::Decision decision = policy::evaluate(rules_, flow);
  std::string judged_by(flow.host);
  // Held flows (ask) and per-request decisions need the approval and HTTP
  // paths; until a flow can be held, it is refused rather than let through.
  if (decision.verdict == policy::Verdict::kAsk)
    return {false, {}, decision.reason + "; approval cannot hold a flow yet: denied", std::move(judged_by)};
  if (!decision.allows()) return {false, {}, std::move(decision.reason), std::move(judged_by)};
  if (decision.per_request)
    return {false, {}, decision.reason + "; per-request rules need the HTTP path: denied", std::move(judged_by)};
  return {true, connect_to, std::move(decision.reason), std::move(judged_by)};
}

bool EgressPolicy::answer_allowed(std::string_view name, Ipv4Address address) const {
  if (!never_reachable(address).empty()) return false;
  if (std::find(host_addresses_.begin(), host_addresses_.end(), address) != host_addresses_.end()) return false;
  return policy::answer_address_allowed(rules_, name, address);
}

std::optional<Ipv4Address> EgressPolicy::resolve_alias(std::string_view name) const {
  std::string n = normalized_name(name);
  for (const HostAlias& alias : aliases_) {
    if (alias.name == n) return alias.guest_ip;
  }
  return std::nullopt;
}

std::vector<Ipv4Address> host_interface_addresses() {
  std::vector<Ipv4Address> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    sockaddr_in sin;
    std::memcpy(&sin, i->ifa_addr, sizeof sin);
    out.push_back(Ipv4Address::from_u32(ntohl(sin.sin_addr.s_addr)));
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace sandboxd::net
