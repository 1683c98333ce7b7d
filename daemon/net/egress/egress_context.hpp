// What every egress piece (TCP and UDP proxies, the DNS server) shares: the
// sandbox's stack they answer through, the way to tell the network loop that
// the stack has new work, and the counters.
//
// All of it lives on the sandbox network's executor; nothing here is touched
// from another thread. `stopped` is set when the network shuts down: async
// handlers that complete afterwards (with operation_aborted, usually) check
// it before touching the stack, which may be gone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

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
  // One buffer for every upstream read: proxies wait for readiness and then
  // read synchronously into it, so an idle connection holds no buffer.
  Bytes read_buffer;

  EgressContext(NetStack& s, std::function<void()> k)
      : stack(s), kick(std::move(k)), read_buffer(kReadBufferSize) {}
};

}  // namespace sandboxd::net
