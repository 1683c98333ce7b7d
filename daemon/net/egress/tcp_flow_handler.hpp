// The seam between deciding what a guest's TCP connection gets and doing it.
//
// What is decided where:
//   plan_flow (flow_plan.hpp)  decides, from the policy, what the flow gets;
//   start_tcp_flow (below)     makes the handler for that decision and starts
//                              it: the one place a plan becomes behaviour;
//   the handler                carries the flow from then on: it answers the
//                              guest's SYN (tcp_accept or tcp_refuse) when it
//                              is ready, and gets the stack's events for the
//                              flow until the flow is closed or stopped;
//   Egress                     keeps the handlers by flow id and hands them
//                              the events; it knows no handler by name.
//
// Handlers today: TcpRelay (tcp_relay.hpp: a host socket, bytes both ways),
// a refusal (RST at once), and DnsTcpSession (dns_tcp_session.hpp: DNS over
// TCP, answered by the gateway). The ones to come plug in here as a new plan
// kind and a new class, with no change to Egress: TLS interception (accept
// the guest, terminate its TLS with the sandbox's CA, open our own upstream,
// run the HTTP hooks between the two), and hold-for-approval (leave the SYN
// unanswered until someone decides, then become a relay or a refusal).
//
// A handler lives on the network's executor. It is owned by Egress's table
// and by its own pending operations (shared_from_this); it holds the egress
// context weakly and checks it first in every completion (egress_context.hpp).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string_view>

#include "daemon/net/egress/egress_context.hpp"
#include "daemon/net/egress/flow_plan.hpp"

namespace sandboxd::net {

class DnsServer;

class TcpFlowHandler {
 public:
  virtual ~TcpFlowHandler() = default;

  // The stack's events for this flow (StackEvent::Kind::kTcpReadable,
  // kTcpWritable, kTcpClosed). After on_closed the id is dead; `leftover` is
  // what the guest sent and nobody took, to deliver after a graceful close.
  virtual void on_readable() = 0;
  virtual void on_writable() = 0;
  virtual void on_closed(std::string_view reason, Bytes leftover) = 0;
  // The network is shutting down: drop everything at once.
  virtual void stop() = 0;
};

// What handlers are made with.
struct TcpFlowEnv {
  boost::asio::any_io_executor executor;
  std::weak_ptr<EgressContext> context;
  std::shared_ptr<DnsServer> dns;
};

// The handler for the new flow `id` to `key`, as `plan` decided, started.
std::shared_ptr<TcpFlowHandler> start_tcp_flow(FlowId id, const FlowKey& key, const FlowPlan& plan,
                                               const TcpFlowEnv& env);

}  // namespace sandboxd::net
