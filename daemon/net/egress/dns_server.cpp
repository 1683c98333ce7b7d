#include "daemon/net/egress/dns_server.hpp"

#include <boost/asio/post.hpp>

namespace sandboxd::net {
namespace asio = boost::asio;

DnsServer::DnsServer(asio::any_io_executor executor, std::weak_ptr<EgressContext> context,
                     std::shared_ptr<HostResolver> resolver)
    : executor_(std::move(executor)), context_(std::move(context)), resolver_(std::move(resolver)) {}

void DnsServer::answer(ByteSpan message, std::size_t max_reply, std::function<void(Bytes)> deliver) {
  auto context = running(context_);
  if (!context) return;
  ++context->counters.dns_queries;
  DnsPlan plan = plan_dns_answer(message, context->policy, max_reply);
  switch (plan.kind) {
    case DnsPlan::Kind::kDrop: return;
    case DnsPlan::Kind::kReply: return deliver(std::move(plan.reply));
    case DnsPlan::Kind::kResolve: break;
  }
  if (resolving_ >= kMaxResolving) {
    ++context->counters.dns_resolve_failures;
    return deliver(dns_resolved_reply(plan.query, {}, true, true, max_reply));
  }
  ++resolving_;
  ++context->counters.dns_resolved_on_host;
  std::string name = plan.query.questions.front().name;
  resolver_->resolve(std::move(name), [weak = weak_from_this(), query = std::move(plan.query), max_reply,
                                       deliver = std::move(deliver)](HostLookup found) {
    auto self = weak.lock();
    if (!self) return;
    --self->resolving_;
    auto still_running = running(self->context_);
    if (!still_running) return;  // the network is stopped or gone: there is no one to answer
    bool failed = found.outcome == HostLookup::Outcome::kFailed;
    if (failed) ++still_running->counters.dns_resolve_failures;
    deliver(dns_resolved_reply(query, found.addresses, found.outcome != HostLookup::Outcome::kNoSuchName, failed,
                               max_reply));
  });
}

void DnsServer::on_udp_query(FlowId id, ByteSpan message) {
  answer(message, kDnsUdpReplyLimit, [weak = context_, id](Bytes reply) {
    auto context = running(weak);
    if (!context) return;
    context->stack.udp_send(id, reply, Clock::now());
    context->kick();
  });
}

void DnsServer::on_tcp_open(FlowId id) {
  auto context = running(context_);
  if (!context) return;
  tcp_sessions_.emplace(id, TcpSession{});
  context->stack.tcp_accept(id, Clock::now());
  context->kick();
}

void DnsServer::on_tcp_readable(FlowId id) {
  auto context = running(context_);
  if (!context) return;
  auto it = tcp_sessions_.find(id);
  if (it == tcp_sessions_.end()) return;
  NetStack& stack = context->stack;
  // Queries are taken from the connection only while replies are not piling
  // up: a guest that sends queries and never reads stops being read.
  while (it->second.replies.size() < kMaxTcpPendingReplies && it->second.resolving < kMaxResolving) {
    ByteSpan data = stack.tcp_readable(id);
    if (data.size() < 2) break;
    std::size_t length =
        (std::size_t{std::to_integer<std::uint8_t>(data[0])} << 8) | std::to_integer<std::uint8_t>(data[1]);
    if (data.size() < 2 + length) break;
    Bytes message(data.begin() + 2, data.begin() + 2 + static_cast<std::ptrdiff_t>(length));
    stack.tcp_consume(id, 2 + length);
    ++it->second.resolving;
    answer(message, kDnsTcpReplyLimit, [weak = weak_from_this(), id](Bytes reply) {
      auto self = weak.lock();
      if (!self) return;
      auto session = self->tcp_sessions_.find(id);
      if (session == self->tcp_sessions_.end()) return;
      auto still_running = running(self->context_);
      if (!still_running) return;
      --session->second.resolving;
      Bytes& out = session->second.replies;
      out.push_back(static_cast<std::byte>(reply.size() >> 8));
      out.push_back(static_cast<std::byte>(reply.size() & 0xff));
      out.insert(out.end(), reply.begin(), reply.end());
      self->flush_tcp(*still_running, id);
      // Queries held back for room may go on now; posted, because a reply
      // made at once arrives inside the loop below, which goes on by itself.
      asio::post(self->executor_, [weak, id] {
        if (auto server = weak.lock()) server->on_tcp_readable(id);
      });
    });
    it = tcp_sessions_.find(id);
    if (it == tcp_sessions_.end()) return;
  }
  flush_tcp(*context, id);
}

void DnsServer::on_tcp_writable(FlowId id) {
  if (auto context = running(context_)) flush_tcp(*context, id);
  on_tcp_readable(id);
}

void DnsServer::flush_tcp(EgressContext& context, FlowId id) {
  auto it = tcp_sessions_.find(id);
  if (it == tcp_sessions_.end()) return;
  NetStack& stack = context.stack;
  Bytes& out = it->second.replies;
  std::size_t taken = stack.tcp_send(id, out);
  out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(taken));
  // The guest is done asking and has every answer: close our side too.
  if (out.empty() && it->second.resolving == 0 && stack.tcp_guest_finished(id) && stack.tcp_readable(id).size() < 2)
    stack.tcp_finish(id);
  context.kick();
}

void DnsServer::on_tcp_closed(FlowId id) { tcp_sessions_.erase(id); }

void DnsServer::stop() {
  resolver_->cancel();
  tcp_sessions_.clear();
}

}  // namespace sandboxd::net
