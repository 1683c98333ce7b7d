#include "daemon/net/egress/flow_plan.hpp"

#include "daemon/net/wire/dns.hpp"

namespace sandboxd::net {

FlowPlan plan_flow(const FlowKey& key, policy::Scheme scheme, const EgressPolicy& policy, std::string_view name,
                   wire::Ipv4Address gateway_ip) {
  if (key.remote_ip == gateway_ip) {
    if (key.remote_port == wire::DnsRepr::kPort) return {FlowPlan::Kind::kGatewayDns, {}, "the gateway's dns"};
    return {FlowPlan::Kind::kRefuse, {}, "the gateway only serves DNS"};
  }
  EgressDecision decision = policy.decide(key, scheme, name);
  if (!decision.allowed) return {FlowPlan::Kind::kRefuse, {}, std::move(decision.reason), std::move(decision.name)};
  return {FlowPlan::Kind::kConnect, decision.connect_to, std::move(decision.reason), std::move(decision.name)};
}

}  // namespace sandboxd::net
