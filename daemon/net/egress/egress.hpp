// Where a sandbox's flows leave the stack: every StackEvent goes through
// handle(). A new flow is planned (plan_flow: the policy's decision, and the
// gateway's own rules), the plan is reported to the audit sink, and then
// carried out: a TCP flow gets the handler start_tcp_flow makes for its
// plan (a relay, a refusal, the gateway's DNS over TCP) and every later
// event of the flow goes to that handler; a UDP flow goes to a UdpProxy or
// the DNS server, or is dropped — and stays dropped for its lifetime.
// Denied TCP connections are refused with a RST, so the guest fails fast.
//
// Egress owns the context every piece shares (egress_context.hpp) and is
// the only owner: handlers that complete after Egress is gone find it
// expired and do nothing.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <unordered_map>
#include <utility>

#include "daemon/net/egress/dns_server.hpp"
#include "daemon/net/egress/egress_context.hpp"
#include "daemon/net/egress/flow_plan.hpp"
#include "daemon/net/egress/host_resolver.hpp"
#include "daemon/net/egress/network_assignment.hpp"
#include "daemon/net/egress/tcp_flow_handler.hpp"
#include "daemon/net/egress/udp_proxy.hpp"

namespace sandboxd::net {

class Egress {
 public:
  // `policy` holds until assign(); `resolver` answers the names the DNS
  // server resolves on the host.
  Egress(boost::asio::any_io_executor executor, NetStack& stack, EgressPolicy policy, std::function<void()> kick,
         std::shared_ptr<HostResolver> resolver);
  ~Egress();
  Egress(const Egress&) = delete;
  Egress& operator=(const Egress&) = delete;

  void handle(StackEvent& event);
  // Closes every socket; no handler touches the stack afterwards.
  void stop();

  // Hands the network to a sandbox (network_assignment.hpp): flows opened
  // from now on follow the new policy and are reported to its sink; open
  // flows keep going.
  void assign(NetworkAssignment assignment);
  // Replaces the assigned policy (sandbox.set_network): new flows and DNS
  // answers follow it; open flows keep going; pins are kept, since every
  // flow is judged again by name and address under the new rules.
  void set_policy(EgressPolicy policy);

  const EgressCounters& counters() const { return context_->counters; }
  const EgressPolicy& policy() const { return context_->assignment.policy; }
  const std::string& log_name() const { return context_->log_name; }

 private:
  bool is_gateway_dns(const FlowKey& key) const;
  void open_tcp(const StackEvent& event);
  void open_udp(StackEvent& event);
  void report(FlowProtocol protocol, const FlowKey& key, const FlowPlan& plan);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<EgressContext> context_;  // the only strong reference
  std::shared_ptr<DnsServer> dns_;
  std::unordered_map<FlowId, std::shared_ptr<TcpFlowHandler>> tcp_;
  std::unordered_map<FlowId, std::shared_ptr<UdpProxy>> udp_;
};

}  // namespace sandboxd::net
