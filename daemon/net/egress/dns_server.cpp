#include "daemon/net/egress/dns_server.hpp"

namespace sandboxd::net {
namespace asio = boost::asio;

DnsServer::DnsServer(asio::any_io_executor executor, std::weak_ptr<EgressContext> context,
                     std::shared_ptr<HostResolver> resolver)
    : executor_(std::move(executor)), context_(std::move(context)), resolver_(std::move(resolver)) {}

void DnsServer::answer(ByteSpan message, std::size_t max_reply, std::function<void(Bytes)> deliver) {
  auto context = running(context_);
  if (!context) return;
  ++context->counters.dns_queries;
  DnsPlan plan = plan_dns_answer(message, context->assignment.policy, max_reply);
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

void DnsServer::stop() { resolver_->cancel(); }

}  // namespace sandboxd::net
