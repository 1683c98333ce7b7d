// The one place that decides where a guest's new flow may go, and what the
// names the guest looks up resolve to: a sandbox's rules (policy/, a
// NetworkPolicy), the host aliases of the daemon's operator, and the
// host's own addresses, which no rule opens.
//
// Host aliases: `--host-alias NAME=IP` (or `host_aliases` in the config)
// makes NAME resolve, in the guest, to an address of the sandbox's own (one
// per alias, from alias_base upward), and a flow to that address is
// connected to IP on the host — the only way a guest reaches the host's
// loopback or the host's own addresses. An alias is still subject to the
// rules, by its name: a policy that allows no flow to NAME gets NAME answered
// like any denied name. The address-class check does not apply to it (the
// operator chose its address, not the guest or a resolver).
//
// The old egress modes are policies too (policy_for_mode): deny-all allows
// the aliases alone, allow-all the aliases and the public internet.
//
// Pure: the host's own addresses are passed in, so tests need no interfaces.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/net/stack/flow_key.hpp"
#include "daemon/net/wire/address.hpp"
#include "policy/evaluate.hpp"
#include "policy/network_policy.hpp"
#include "protocol/enum_names.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net {

enum class EgressMode { kAllowAll, kDenyAll };
inline constexpr auto kEgressModeNames = make_enum_names(EnumName<EgressMode>{EgressMode::kDenyAll, "deny-all"},
                                                         EnumName<EgressMode>{EgressMode::kAllowAll, "allow-all"});
inline std::string_view to_string(EgressMode mode) { return kEgressModeNames.name(mode); }
Expected<EgressMode, std::string> parse_egress_mode(std::string_view text);

struct HostAlias {
  std::string name;              // lower case, no trailing dot
  wire::Ipv4Address host_ip;     // where flows to it are connected on the host
  wire::Ipv4Address guest_ip;    // what the name resolves to in the guest
};
using AliasList = std::vector<std::pair<std::string, wire::Ipv4Address>>;

// "NAME=IP" as given on the command line.
Expected<std::pair<std::string, wire::Ipv4Address>, std::string> parse_host_alias(std::string_view text);

// The rules an old egress mode stands for, given the aliases' names:
// deny-all allows a flow to each alias; allow-all adds every public address.
policy::NetworkPolicy policy_for_mode(EgressMode mode, const AliasList& aliases);

struct EgressDecision {
  bool allowed = false;
  wire::Ipv4Address connect_to;  // when allowed: the host-side destination
  std::string reason;            // either way, why: for logs, counters and audit records
  std::string name;              // the name the flow was judged by (an alias's, a pinned one), or empty
};

class EgressPolicy {
 public:
  static constexpr std::size_t kMaxAliases = 64;

  // `aliases` are (name, host address) pairs; each gets a guest address from
  // `alias_base` on. Fails on a bad name, a duplicate, or too many.
  static Expected<EgressPolicy, std::string> make(policy::NetworkPolicy rules, const AliasList& aliases,
                                                   wire::Ipv4Address alias_base,
                                                   std::vector<wire::Ipv4Address> host_addresses);

  const policy::NetworkPolicy& rules() const { return rules_; }
  const std::vector<HostAlias>& aliases() const { return aliases_; }
  // The same aliases and host addresses under other rules (sandbox.set_network).
  EgressPolicy with_rules(policy::NetworkPolicy rules) const;

  // May a new flow from the guest to key.remote_ip:remote_port be opened,
  // and to which host-side address? `name` is what the sandbox's DNS
  // answered that address for (name_pins.hpp), or empty.
  EgressDecision decide(const FlowKey& key, policy::Scheme scheme, std::string_view name) const;

  // The guest address an alias name (any case, trailing dot allowed) stands
  // for, whatever the rules say.
  std::optional<wire::Ipv4Address> resolve_alias(std::string_view name) const;
  // Whether some flow to `name` could be allowed: only such names are
  // answered (aliases) or resolved on the host; every other name is
  // answered without a lookup.
  bool may_resolve(std::string_view name) const { return policy::name_may_be_allowed(rules_, name); }
  // Whether an address the host resolved for `name` may be given to the guest.
  bool answer_allowed(std::string_view name, wire::Ipv4Address address) const;

 private:
  policy::NetworkPolicy rules_;
  std::vector<HostAlias> aliases_;
  std::vector<wire::Ipv4Address> host_addresses_;
};

// The IPv4 addresses of this host's interfaces (for EgressPolicy::make).
std::vector<wire::Ipv4Address> host_interface_addresses();

}  // namespace sandboxd::net
