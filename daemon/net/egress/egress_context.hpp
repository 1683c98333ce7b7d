// What every egress piece (the flow handlers, the UDP proxies, the DNS
// server) shares: the sandbox's stack they answer through, the way to tell
// the network loop that the stack has new work, the counters, and what the
// network was assigned (policy, identity, audit sink).
//
// Lifetime, the rule every handler follows
// ----------------------------------------
// The context refers to the stack, which lives beside Egress in
// SandboxNetwork and dies with it; asynchronous completions (a connect, a
// readiness wait, the host resolver's answer from its own thread) can come
// after that. So the context is owned by Egress alone, through a
// shared_ptr, and everything else holds a weak_ptr: a handler starts with
// running(context_), which yields the context only while Egress exists and
// has not been stopped, and touches nothing of the network when it yields
// null. A strong reference is held for the length of one handler and never
// stored, so "the context can be locked" implies "the stack is alive". None
// of this depends on the order in which asio runs the handlers of a
// stopped network.
//
// Everything here lives on the sandbox network's executor; nothing is
// touched from another thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daemon/net/egress/name_pins.hpp"
#include "daemon/net/egress/network_assignment.hpp"
#include "daemon/net/stack/net_stack.hpp"

namespace sandboxd::net {

struct EgressCounters {
  std::uint64_t tcp_connected = 0;
  std::uint64_t tcp_denied = 0;
  std::uint64_t tcp_connect_failed = 0;
  std::uint64_t udp_flows_allowed = 0;
  std::uint64_t udp_flows_denied = 0;
  std::uint64_t dns_queries = 0;
  std::uint64_t dns_resolved_on_host = 0;
  std::uint64_t dns_resolve_failures = 0;
  std::uint64_t dns_answers_refused = 0;  // every address found was one the rules refuse
  std::uint64_t dns_rate_limited = 0;
  std::uint64_t bytes_to_upstream = 0;
  std::uint64_t bytes_from_upstream = 0;

  std::string to_text() const;
};

struct EgressContext {
  static constexpr std::size_t kReadBufferSize = 256 * 1024;

  NetStack& stack;
  std::function<void()> kick;  // the stack has work: run the network loop soon
  EgressCounters counters;
  bool stopped = false;
  // One buffer for every upstream read: relays wait for readiness and then
  // read synchronously into it, so an idle connection holds no buffer.
  Bytes read_buffer;
  // Until assign(): no id, the waiting policy, no sink.
  NetworkAssignment assignment;
  // The name each address the DNS gave out stands for; cleared on assign().
  NamePins pins;
  // What every log line from this network starts with: "net", then
  // "sandbox <id>: net" once assigned.
  std::string log_name = "net";

  EgressContext(NetStack& s, std::function<void()> k, EgressPolicy policy)
      : stack(s), kick(std::move(k)), read_buffer(kReadBufferSize) {
    assignment.policy = std::move(policy);
  }
};

// The context, if the network it belongs to still exists and runs; null
// otherwise. The first call of every handler that can outlive its caller.
inline std::shared_ptr<EgressContext> running(const std::weak_ptr<EgressContext>& context) {
  auto locked = context.lock();
  return locked && !locked->stopped ? locked : nullptr;
}

}  // namespace sandboxd::net
