#include "daemon/net/egress/dns_server.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>

namespace sandboxd::net {
namespace asio = boost::asio;
using boost::system::error_code;

DnsServer::DnsServer(asio::any_io_executor executor, EgressContext& context, const EgressPolicy& policy)
    : context_(context), policy_(policy), resolver_(executor) {}

void DnsServer::answer(ByteSpan message, std::size_t max_reply, std::function<void(Bytes)> deliver) {
  ++context_.counters.dns_queries;
  DnsPlan plan = plan_dns_answer(message, policy_, max_reply);
  switch (plan.kind) {
    case DnsPlan::Kind::kDrop: return;
    case DnsPlan::Kind::kReply: return deliver(std::move(plan.reply));
    case DnsPlan::Kind::kResolve: break;
  }
  if (resolving_ >= kMaxResolving) {
    ++context_.counters.dns_resolve_failures;
    return deliver(dns_resolved_reply(plan.query, {}, true, true, max_reply));
  }
  ++resolving_;
  ++context_.counters.dns_resolved_on_host;
  auto self = shared_from_this();
  std::string name = plan.query.questions.front().name;
  resolver_.async_resolve(
      asio::ip::tcp::v4(), name, "",
      [self, query = std::move(plan.query), max_reply, deliver = std::move(deliver)](
          const error_code& ec, const asio::ip::tcp::resolver::results_type& results) {
        --self->resolving_;
        if (self->context_.stopped) return;
        std::vector<wire::Ipv4Address> addresses;
        for (const auto& entry : results) {
          auto a = entry.endpoint().address();
          if (!a.is_v4()) continue;
          auto ip = wire::Ipv4Address::from_u32(a.to_v4().to_uint());
          if (std::find(addresses.begin(), addresses.end(), ip) == addresses.end()) addresses.push_back(ip);
        }
        bool not_found = ec == asio::error::host_not_found;
        bool failed = ec && !not_found && ec != asio::error::no_data;
        if (failed) ++self->context_.counters.dns_resolve_failures;
        deliver(dns_resolved_reply(query, addresses, !not_found, failed, max_reply));
      });
}

void DnsServer::on_udp_query(FlowId id, ByteSpan message) {
  auto self = shared_from_this();
  answer(message, kDnsUdpReplyLimit, [self, id](Bytes reply) {
    self->context_.stack.udp_send(id, reply, Clock::now());
    self->context_.kick();
  });
}

void DnsServer::on_tcp_open(FlowId id) {
  tcp_sessions_.emplace(id, TcpSession{});
  context_.stack.tcp_accept(id, Clock::now());
  context_.kick();
}

void DnsServer::on_tcp_readable(FlowId id) {
  auto it = tcp_sessions_.find(id);
  if (it == tcp_sessions_.end()) return;
  NetStack& stack = context_.stack;
  // Queries are taken from the connection only while replies are not piling
  // up: a guest that sends queries and never reads stops being read.
  while (it->second.replies.size() < kMaxTcpPendingReplies && it->second.resolving < kMaxResolving) {
    ByteSpan data = stack.tcp_readable(id);
    if (data.size() < 2) break;
    std::size_t length = (std::size_t{std::to_integer<std::uint8_t>(data[0])} << 8) | std::to_integer<std::uint8_t>(data[1]);
    if (data.size() < 2 + length) break;
    Bytes message(data.begin() + 2, data.begin() + 2 + static_cast<std::ptrdiff_t>(length));
    stack.tcp_consume(id, 2 + length);
    ++it->second.resolving;
    auto self = shared_from_this();
    answer(message, kDnsTcpReplyLimit, [self, id](Bytes reply) {
      auto session = self->tcp_sessions_.find(id);
      if (session == self->tcp_sessions_.end()) return;
      --session->second.resolving;
      Bytes& out = session->second.replies;
      out.push_back(static_cast<std::byte>(reply.size() >> 8));
      out.push_back(static_cast<std::byte>(reply.size() & 0xff));
      out.insert(out.end(), reply.begin(), reply.end());
      self->flush_tcp(id);
      // Queries held back for room may go on now; posted, because a reply
      // made at once arrives inside the loop below, which goes on by itself.
      asio::post(self->resolver_.get_executor(), [self, id] { self->on_tcp_readable(id); });
    });
    it = tcp_sessions_.find(id);
    if (it == tcp_sessions_.end()) return;
  }
  flush_tcp(id);
}

void DnsServer::on_tcp_writable(FlowId id) {
  flush_tcp(id);
  on_tcp_readable(id);
}

void DnsServer::flush_tcp(FlowId id) {
  auto it = tcp_sessions_.find(id);
  if (it == tcp_sessions_.end()) return;
  NetStack& stack = context_.stack;
  Bytes& out = it->second.replies;
  std::size_t taken = stack.tcp_send(id, out);
  out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(taken));
  // The guest is done asking and has every answer: close our side too.
  if (out.empty() && it->second.resolving == 0 && stack.tcp_guest_finished(id) && stack.tcp_readable(id).size() < 2)
    stack.tcp_finish(id);
  context_.kick();
}

void DnsServer::on_tcp_closed(FlowId id) { tcp_sessions_.erase(id); }

void DnsServer::stop() {
  resolver_.cancel();
  tcp_sessions_.clear();
}

}  // namespace sandboxd::net
