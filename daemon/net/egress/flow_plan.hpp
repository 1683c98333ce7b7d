// What becomes of a guest's new flow, decided before any socket is touched:
// a pure function of the flow's addresses and scheme, the name its address
// was pinned to by the sandbox's DNS (or none), the policy and the gateway's
// address, the same for TCP and UDP.
//
//   to the gateway, port 53   -> kGatewayDns: the gateway's DNS server answers
//   to the gateway, elsewhere -> kRefuse ("the gateway only serves DNS")
//   anywhere else             -> what EgressPolicy::decide says:
//                                kConnect to its host-side address, or kRefuse
//
// The plan is what is audited (flow_audit.hpp) and what picks the flow's
// handler (tcp_flow_handler.hpp). Kinds to come — intercept TLS, hold for
// approval — are decided here too, so every handler sees a decision already
// made and no handler consults the policy itself.
#pragma once

#include <string>
#include <string_view>

#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/stack/flow_key.hpp"

namespace sandboxd::net {

struct FlowPlan {
  enum class Kind { kGatewayDns, kConnect, kRefuse };
  Kind kind = Kind::kRefuse;
  wire::Ipv4Address connect_to;  // kConnect: where, on the host; the port is the guest's
  std::string reason;            // for logs, counters and audit records
  std::string name;              // the name the flow was judged by, or empty (flow_audit.hpp)

  bool allowed() const { return kind != Kind::kRefuse; }
};

FlowPlan plan_flow(const FlowKey& key, policy::Scheme scheme, const EgressPolicy& policy, std::string_view name,
                   wire::Ipv4Address gateway_ip);

}  // namespace sandboxd::net
