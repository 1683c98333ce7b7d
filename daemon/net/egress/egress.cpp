#include "daemon/net/egress/egress.hpp"

#include <spdlog/spdlog.h>

namespace sandboxd::net {
namespace asio = boost::asio;
using Kind = StackEvent::Kind;

std::string EgressCounters::to_text() const {
  std::string out;
  auto line = [&](std::string_view name, std::uint64_t value) { append_counter_line(out, name, value); };
  line("tcp connected upstream", tcp_connected);
  line("tcp denied", tcp_denied);
  line("tcp connect failed", tcp_connect_failed);
  line("udp flows allowed", udp_flows_allowed);
  line("udp flows denied", udp_flows_denied);
  line("dns queries", dns_queries);
  line("dns resolved on host", dns_resolved_on_host);
  line("dns resolve failures", dns_resolve_failures);
  line("dns answers refused", dns_answers_refused);
  line("dns queries rate limited", dns_rate_limited);
  line("bytes to upstream", bytes_to_upstream);
  line("bytes from upstream", bytes_from_upstream);
  return out;
}

Egress::Egress(asio::any_io_executor executor, NetStack& stack, EgressPolicy policy, std::function<void()> kick,
               std::shared_ptr<HostResolver> resolver)
    // Not make_shared: the context gets an allocation of its own, freed when
    // Egress goes, and not kept by the handlers' weak references to its
    // control block; so a reference that outlived it is a use after free the
    // sanitizers report, not a silent read of a destroyed object.
    : executor_(executor), context_(new EgressContext(stack, std::move(kick), std::move(policy))) {
  dns_ = std::make_shared<DnsServer>(executor_, context_, std::move(resolver));
}

Egress::~Egress() { stop(); }

void Egress::stop() {
  if (context_->stopped) return;
  context_->stopped = true;
  dns_->stop();
  for (auto& [id, handler] : tcp_) handler->stop();
  for (auto& [id, proxy] : udp_) proxy->stop();
  tcp_.clear();
  udp_.clear();
}

void Egress::assign(NetworkAssignment assignment) {
  context_->log_name = assignment.sandbox_id.empty() ? "net" : "sandbox " + assignment.sandbox_id + ": net";
  spdlog::debug("{}: assigned (owner {}, {} rules)", context_->log_name, assignment.owner,
                assignment.policy.rules().rules.size());
  context_->assignment = std::move(assignment);
  context_->pins.clear();
}

void Egress::set_policy(EgressPolicy policy) {
  spdlog::debug("{}: policy replaced ({} rules)", context_->log_name, policy.rules().rules.size());
  context_->assignment.policy = std::move(policy);
}

void Egress::handle(StackEvent& event) {
  if (context_->stopped) return;
  switch (event.kind) {
    case Kind::kTcpOpen: return open_tcp(event);
    case Kind::kTcpReadable:
      if (auto it = tcp_.find(event.id); it != tcp_.end()) it->second->on_readable();
      return;
    case Kind::kTcpWritable:
      if (auto it = tcp_.find(event.id); it != tcp_.end()) it->second->on_writable();
      return;
    case Kind::kTcpClosed:
      if (auto it = tcp_.find(event.id); it != tcp_.end()) {
        auto handler = std::move(it->second);
        tcp_.erase(it);
        handler->on_closed(event.reason, std::move(event.payload));
      }
      return;
    case Kind::kUdpDatagram:
      if (event.new_flow) return open_udp(event);
      if (is_gateway_dns(event.key)) return dns_->on_udp_query(event.id, event.payload);
      if (auto it = udp_.find(event.id); it != udp_.end()) it->second->send(event.payload);
      return;
    case Kind::kUdpClosed:
      if (auto it = udp_.find(event.id); it != udp_.end()) {
        it->second->stop();
        udp_.erase(it);
      }
      return;
  }
}

bool Egress::is_gateway_dns(const FlowKey& key) const {
  return key.remote_ip == context_->stack.config().gateway_ip && key.remote_port == wire::DnsRepr::kPort;
}

void Egress::report(FlowProtocol protocol, const FlowKey& key, const FlowPlan& plan) {
  const NetworkAssignment& a = context_->assignment;
  if (!plan.allowed())
    spdlog::debug("{}: {} {} denied: {}", context_->log_name, to_string(protocol), key.to_string(), plan.reason);
  if (!a.audit) return;
  FlowAudit record;
  record.time = std::chrono::system_clock::now();
  record.sandbox_id = a.sandbox_id;
  record.owner = a.owner;
  record.protocol = protocol;
  record.key = key;
  record.name = plan.name;
  record.verdict = plan.allowed() ? FlowVerdict::kAllowed : FlowVerdict::kDenied;
  record.reason = plan.reason;
  switch (plan.kind) {
    case FlowPlan::Kind::kGatewayDns: record.destination = FlowDestination::kGatewayDns; break;
    case FlowPlan::Kind::kConnect:
      record.destination = FlowDestination::kUpstream;
      record.connected_to = {plan.connect_to, key.remote_port};
      break;
    case FlowPlan::Kind::kRefuse: break;
  }
  a.audit(record);
}

void Egress::open_tcp(const StackEvent& event) {
  FlowPlan plan = plan_flow(event.key, policy::Scheme::kTcp, context_->assignment.policy,
                            context_->pins.name_for(event.key.remote_ip), context_->stack.config().gateway_ip);
  report(FlowProtocol::kTcp, event.key, plan);
  if (!plan.allowed()) ++context_->counters.tcp_denied;
  tcp_.emplace(event.id, start_tcp_flow(event.id, event.key, plan, TcpFlowEnv{executor_, context_, dns_}));
}

void Egress::open_udp(StackEvent& event) {
  FlowPlan plan = plan_flow(event.key, policy::Scheme::kUdp, context_->assignment.policy,
                            context_->pins.name_for(event.key.remote_ip), context_->stack.config().gateway_ip);
  std::shared_ptr<UdpProxy> proxy;
  if (plan.kind == FlowPlan::Kind::kConnect) {
    proxy = std::make_shared<UdpProxy>(executor_, context_, event.id);
    if (!proxy->open(asio::ip::udp::endpoint(asio::ip::address_v4(plan.connect_to.to_u32()), event.key.remote_port)))
      plan = FlowPlan{FlowPlan::Kind::kRefuse, {}, "the host socket could not be opened"};
  }
  report(FlowProtocol::kUdp, event.key, plan);
  switch (plan.kind) {
    case FlowPlan::Kind::kGatewayDns: return dns_->on_udp_query(event.id, event.payload);
    case FlowPlan::Kind::kRefuse: ++context_->counters.udp_flows_denied; return;
    case FlowPlan::Kind::kConnect: break;
  }
  ++context_->counters.udp_flows_allowed;
  udp_.emplace(event.id, proxy);
  proxy->send(event.payload);
}

}  // namespace sandboxd::net
