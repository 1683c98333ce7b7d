// The one place that decides where a guest's new flow may go, and what the
// names the guest looks up resolve to.
//
// Two modes for now (the policy component replaces them with rules):
// allow-all lets a flow go to any public or private address, and lets the
// gateway's DNS resolve names on the host; deny-all lets nothing out and
// resolves nothing. Host aliases work in both: `--host-alias NAME=IP` makes
// NAME resolve, in the guest, to an address of the sandbox's own (one per
// alias, from config.alias_base upward), and a flow to that address is
// connected to IP on the host — the only way a guest reaches the host's
// loopback or the host's own addresses, which allow-all never opens.
//
// Pure: the host's own addresses are passed in, so tests need no interfaces.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/net/stack/flow_key.hpp"
#include "daemon/net/wire/address.hpp"
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

// "NAME=IP" as given on the command line.
Expected<std::pair<std::string, wire::Ipv4Address>, std::string> parse_host_alias(std::string_view text);

struct EgressDecision {
  bool allowed = false;
  wire::Ipv4Address connect_to;  // when allowed: the host-side destination
  std::string_view reason;       // either way, why: a string literal for logs, counters and audit records
};

class EgressPolicy {
 public:
  static constexpr std::size_t kMaxAliases = 64;

  // `aliases` are (name, host address) pairs; each gets a guest address from
  // `alias_base` on. Fails on a bad name, a duplicate, or too many.
  static Expected<EgressPolicy, std::string> make(EgressMode mode,
                                                   const std::vector<std::pair<std::string, wire::Ipv4Address>>& aliases,
                                                   wire::Ipv4Address alias_base,
                                                   std::vector<wire::Ipv4Address> host_addresses);

  EgressMode mode() const { return mode_; }
  const std::vector<HostAlias>& aliases() const { return aliases_; }

  // May a flow from the guest to key.remote_ip:remote_port be opened, and to
  // which host-side address?
  EgressDecision decide(const FlowKey& key) const;

  // The guest address an alias name (any case, trailing dot allowed) stands for.
  std::optional<wire::Ipv4Address> resolve_alias(std::string_view name) const;
  // Whether names that are not aliases may be resolved on the host.
  bool resolves_upstream() const { return mode_ == EgressMode::kAllowAll; }

 private:
  EgressMode mode_ = EgressMode::kDenyAll;
  std::vector<HostAlias> aliases_;
  std::vector<wire::Ipv4Address> host_addresses_;
};

// The IPv4 addresses of this host's interfaces (for EgressPolicy::make).
std::vector<wire::Ipv4Address> host_interface_addresses();

}  // namespace sandboxd::net
