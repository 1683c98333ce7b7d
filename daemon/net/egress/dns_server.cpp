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
  if (!take_query_token()) {
    // Over the rate: dropped like a lost datagram, so a guest flooding its
    // resolver costs the host no work and no reply traffic.
    ++context->counters.dns_rate_limited;
    return;
  }
  DnsPlan plan = plan_dns_answer(message, context->assignment.policy, max_reply);
  switch (plan.kind) {
    case DnsPlan::Kind::kDrop: return;
    case DnsPlan::Kind::kReply: return deliver(std::move(plan.reply));
    case DnsPlan::Kind::kResolve: break;
  }
  if (resolving_ >= kMaxResolving) {
    ++context->counters.dns_resolve_failures;
    return deliver(dns_resolved_reply(plan.query, {}, ResolvedOutcome::kFailed, max_reply));
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
    deliver(self->reply_to_lookup(*still_running, query, found, max_reply));
  });
}

Bytes DnsServer::reply_to_lookup(EgressContext& context, const wire::DnsRepr& query, const HostLookup& found,
                                 std::size_t max_reply) {
  switch (found.outcome) {
    case HostLookup::Outcome::kFailed:
      ++context.counters.dns_resolve_failures;
      return dns_resolved_reply(query, {}, ResolvedOutcome::kFailed, max_reply);
    case HostLookup::Outcome::kNoSuchName: return dns_resolved_reply(query, {}, ResolvedOutcome::kNoSuchName, max_reply);
    case HostLookup::Outcome::kFound: break;
  }
  // Judged by the policy in force now, which may have been replaced while
  // the lookup ran.
  const std::string& name = query.questions.front().name;
  const EgressPolicy& policy = context.assignment.policy;
  std::vector<wire::Ipv4Address> given;
  for (const auto& address : found.addresses) {
    if (policy.answer_allowed(name, address)) given.push_back(address);
  }
  if (given.empty() && !found.addresses.empty()) {
    ++context.counters.dns_answers_refused;
    return dns_resolved_reply(query, {}, ResolvedOutcome::kRefused, max_reply);
  }
  for (const auto& address : given) context.pins.pin(address, name);
  return dns_resolved_reply(query, given, ResolvedOutcome::kFound, max_reply);
}

bool DnsServer::take_query_token() {
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  last_refill_ = now;
  tokens_ = std::min(static_cast<double>(kQueryBurst), tokens_ + elapsed * kQueriesPerSecond);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
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
