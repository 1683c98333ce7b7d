// The gateway's DNS server, on port 53 of the gateway's address. What a
// query gets is decided by plan_dns_answer (dns_answer.hpp); this adds the
// I/O: UDP queries are answered on their flow, TCP connections are carried
// by DnsTcpSession (dns_tcp_session.hpp), which unframes queries and hands
// them to answer(). Names to resolve go to the host's resolver
// (host_resolver.hpp), at most kMaxResolving at a time per sandbox — more
// are answered SERVFAIL at once, so a guest cannot queue unbounded work on
// the host; and at most kQueriesPerSecond queries are answered per sandbox
// (bursts of kQueryBurst), the rest dropped. The addresses found are given
// to the guest only as far as the policy allows (EgressPolicy::
// answer_allowed), and each one given is pinned to the name (name_pins.hpp).
//
// The resolver answers from another thread's work, whenever it is done,
// perhaps after the network is stopped and destroyed (getaddrinfo cannot be
// interrupted). Its callback holds only weak references — to this server
// and, through it, to the egress context — and checks both before it
// delivers anything (egress_context.hpp).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "daemon/net/egress/dns_answer.hpp"
#include "daemon/net/egress/egress_context.hpp"
#include "daemon/net/egress/host_resolver.hpp"

namespace sandboxd::net {

class DnsServer : public std::enable_shared_from_this<DnsServer> {
 public:
  static constexpr unsigned kMaxResolving = 16;
  static constexpr unsigned kQueriesPerSecond = 200;
  static constexpr unsigned kQueryBurst = 400;

  DnsServer(boost::asio::any_io_executor executor, std::weak_ptr<EgressContext> context,
            std::shared_ptr<HostResolver> resolver);

  // A query that came over UDP on flow `id`; the reply goes back on it.
  void on_udp_query(FlowId id, ByteSpan message);

  // Answers one query with a reply of at most `max_reply` bytes: `deliver`
  // runs inline when the answer is known at once, later when the host's
  // resolver was asked, and not at all if the network stops meanwhile.
  void answer(ByteSpan message, std::size_t max_reply, std::function<void(Bytes)> deliver);

  const boost::asio::any_io_executor& executor() const { return executor_; }

  void stop();

 private:
  boost::asio::any_io_executor executor_;
  std::weak_ptr<EgressContext> context_;
  std::shared_ptr<HostResolver> resolver_;
  Bytes reply_to_lookup(EgressContext& context, const wire::DnsRepr& query, const HostLookup& found,
                        std::size_t max_reply);
  bool take_query_token();

  unsigned resolving_ = 0;
  double tokens_ = kQueryBurst;
  std::chrono::steady_clock::time_point last_refill_ = std::chrono::steady_clock::now();
};

}  // namespace sandboxd::net
