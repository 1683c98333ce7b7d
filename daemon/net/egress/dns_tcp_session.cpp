#include "daemon/net/egress/dns_tcp_session.hpp"

#include <boost/asio/post.hpp>

namespace sandboxd::net {
namespace asio = boost::asio;

DnsTcpSession::DnsTcpSession(std::weak_ptr<EgressContext> context, std::shared_ptr<DnsServer> server, FlowId id)
    : context_(std::move(context)), server_(std::move(server)), id_(id) {}

void DnsTcpSession::open() {
  auto context = live();
  if (!context) return;
  context->stack.tcp_accept(id_, Clock::now());
  context->kick();
}

void DnsTcpSession::on_readable() {
  if (auto context = live()) take_queries(*context);
}

void DnsTcpSession::on_writable() {
  auto context = live();
  if (!context) return;
  flush(*context);
  take_queries(*context);
}

void DnsTcpSession::take_queries(EgressContext& context) {
  NetStack& stack = context.stack;
  while (!closed_ && replies_.size() < kMaxTcpPendingReplies && resolving_ < DnsServer::kMaxResolving) {
    ByteSpan data = stack.tcp_readable(id_);
    if (data.size() < 2) break;
    std::size_t length =
        (std::size_t{std::to_integer<std::uint8_t>(data[0])} << 8) | std::to_integer<std::uint8_t>(data[1]);
    if (data.size() < 2 + length) break;
    Bytes message(data.begin() + 2, data.begin() + 2 + static_cast<std::ptrdiff_t>(length));
    stack.tcp_consume(id_, 2 + length);
    ++resolving_;
    server_->answer(message, kDnsTcpReplyLimit, [weak = weak_from_this()](Bytes reply) {
      if (auto self = weak.lock()) self->on_reply(std::move(reply));
    });
  }
  flush(context);
}

void DnsTcpSession::on_reply(Bytes reply) {
  --resolving_;
  auto context = live();
  if (!context) return;
  replies_.push_back(static_cast<std::byte>(reply.size() >> 8));
  replies_.push_back(static_cast<std::byte>(reply.size() & 0xff));
  replies_.insert(replies_.end(), reply.begin(), reply.end());
  flush(*context);
  // Queries held back for room may go on now; posted, because a reply made
  // at once arrives inside take_queries' loop, which goes on by itself.
  asio::post(server_->executor(), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_readable();
  });
}

void DnsTcpSession::flush(EgressContext& context) {
  NetStack& stack = context.stack;
  std::size_t taken = stack.tcp_send(id_, replies_);
  replies_.erase(replies_.begin(), replies_.begin() + static_cast<std::ptrdiff_t>(taken));
  // The guest is done asking and has every answer: close our side too.
  if (replies_.empty() && resolving_ == 0 && stack.tcp_guest_finished(id_) && stack.tcp_readable(id_).size() < 2)
    stack.tcp_finish(id_);
  context.kick();
}

void DnsTcpSession::on_closed(std::string_view, Bytes) { closed_ = true; }

void DnsTcpSession::stop() { closed_ = true; }

}  // namespace sandboxd::net
