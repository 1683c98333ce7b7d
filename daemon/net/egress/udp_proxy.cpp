#include "daemon/net/egress/udp_proxy.hpp"

namespace sandboxd::net {
namespace asio = boost::asio;
using boost::system::error_code;

UdpProxy::UdpProxy(asio::any_io_executor executor, std::weak_ptr<EgressContext> context, FlowId id)
    : context_(std::move(context)), id_(id), socket_(executor), buffer_(65536) {}

bool UdpProxy::open(const asio::ip::udp::endpoint& destination) {
  error_code ec;
  socket_.open(asio::ip::udp::v4(), ec);
  if (!ec) socket_.non_blocking(true, ec);
  if (!ec) socket_.connect(destination, ec);
  if (ec) {
    socket_.close(ec);
    return false;
  }
  receive();
  return true;
}

void UdpProxy::send(ByteSpan payload) {
  if (stopped_ || !socket_.is_open()) return;
  error_code ec;
  socket_.send(asio::buffer(payload.data(), payload.size()), 0, ec);
  if (ec) ++send_drops_;
}

void UdpProxy::receive() {
  auto self = shared_from_this();
  socket_.async_receive(asio::buffer(buffer_), [self](const error_code& ec, std::size_t n) {
    if (self->stopped_ || ec == asio::error::operation_aborted) return;
    auto context = running(self->context_);
    if (!context) return;
    if (!ec) {
      context->stack.udp_send(self->id_, ByteSpan(self->buffer_).first(n), Clock::now());
      context->kick();
    }
    // ECONNREFUSED and the like: the destination said no to one datagram;
    // the flow stays until it idles out.
    self->receive();
  });
}

void UdpProxy::stop() {
  stopped_ = true;
  error_code ignored;
  socket_.close(ignored);
}

}  // namespace sandboxd::net
