#include "daemon/net/egress/tcp_relay.hpp"

#include <boost/asio/write.hpp>

namespace sandboxd::net {
namespace asio = boost::asio;
using boost::system::error_code;
using asio::ip::tcp;

TcpRelay::TcpRelay(asio::any_io_executor executor, std::weak_ptr<EgressContext> context, FlowId id)
    : context_(std::move(context)), id_(id), socket_(executor), deadline_(executor) {}

void TcpRelay::connect(const tcp::endpoint& destination) {
  auto self = shared_from_this();
  deadline_.expires_after(kConnectTimeout);
  deadline_.async_wait([self](const error_code& ec) {
    if (!ec) self->close_socket();  // the pending connect completes with an error
  });
  socket_.async_connect(destination, [self](const error_code& ec) { self->on_connect(ec); });
}

void TcpRelay::on_connect(const error_code& ec) {
  deadline_.cancel();
  auto context = live();
  if (!context) return;
  error_code option_error;
  if (!ec) socket_.non_blocking(true, option_error);
  if (ec || option_error) {
    ++context->counters.tcp_connect_failed;
    closed_ = true;
    context->stack.tcp_refuse(id_);
    context->kick();
    close_socket();
    return;
  }
  ++context->counters.tcp_connected;
  connected_ = true;
  socket_.set_option(tcp::no_delay(true), option_error);
  context->stack.tcp_accept(id_, Clock::now());
  context->kick();
  read_upstream(*context);
  write_upstream(*context);
}

void TcpRelay::on_readable() {
  if (auto context = live()) write_upstream(*context);
}

void TcpRelay::on_writable() {
  if (auto context = live()) read_upstream(*context);
}

// ---- guest -> upstream ---------------------------------------------------

void TcpRelay::write_upstream(EgressContext& context) {
  if (!connected_ || waiting_write_) return;
  NetStack& stack = context.stack;
  for (;;) {
    ByteSpan data = stack.tcp_readable(id_);
    if (data.empty()) {
      if (stack.tcp_guest_finished(id_) && !shutdown_sent_) {
        shutdown_sent_ = true;
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
      }
      return;
    }
    error_code ec;
    std::size_t n = socket_.write_some(asio::buffer(data.data(), data.size()), ec);
    if (n > 0) {
      context.counters.bytes_to_upstream += n;
      stack.tcp_consume(id_, n);
      context.kick();
    }
    if (ec == asio::error::would_block || (!ec && n < data.size())) return wait_writable();
    if (ec) return fail(context);
  }
}

void TcpRelay::wait_writable() {
  waiting_write_ = true;
  auto self = shared_from_this();
  socket_.async_wait(tcp::socket::wait_write, [self](const error_code& ec) {
    self->waiting_write_ = false;
    if (self->closed_ && !ec) return self->write_final();
    auto context = self->live();
    if (!context) return;
    if (ec) return self->fail(*context);
    self->write_upstream(*context);
  });
}

void TcpRelay::on_closed(std::string_view reason, Bytes leftover) {
  closed_ = true;
  if (reason != "closed" || !connected_) return close_socket();
  // A graceful close: what the guest sent last still goes upstream, once the
  // socket can take it, and then the socket is closed.
  final_bytes_ = std::move(leftover);
  if (!waiting_write_) write_final();
}

void TcpRelay::write_final() {
  if (final_bytes_.empty() || !running(context_)) return close_socket();
  auto self = shared_from_this();
  // An upstream that never reads must not keep the socket (and this relay)
  // forever: the last bytes have a deadline.
  deadline_.expires_after(kFinalWriteTimeout);
  deadline_.async_wait([self](const error_code& ec) {
    if (!ec) self->close_socket();
  });
  asio::async_write(socket_, asio::buffer(final_bytes_), [self](const error_code&, std::size_t) {
    self->deadline_.cancel();
    self->close_socket();
  });
}

// ---- upstream -> guest ---------------------------------------------------

void TcpRelay::read_upstream(EgressContext& context) {
  if (!connected_ || waiting_read_ || upstream_eof_) return;
  if (context.stack.tcp_send_space(id_) == 0) return;  // a kTcpWritable event brings us back
  waiting_read_ = true;
  auto self = shared_from_this();
  socket_.async_wait(tcp::socket::wait_read, [self](const error_code& ec) {
    self->waiting_read_ = false;
    auto still_open = self->live();
    if (!still_open) return;
    if (ec) return self->fail(*still_open);
    self->drain_upstream(*still_open);
  });
}

void TcpRelay::drain_upstream(EgressContext& context) {
  NetStack& stack = context.stack;
  Bytes& buffer = context.read_buffer;
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    std::size_t space = stack.tcp_send_space(id_);
    if (space == 0) return;
    error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buffer.data(), std::min(space, buffer.size())), ec);
    if (n > 0) {
      context.counters.bytes_from_upstream += n;
      stack.tcp_send(id_, ByteSpan(buffer).first(n));
      context.kick();
    }
    if (ec == asio::error::would_block) break;
    if (ec == asio::error::eof) {
      upstream_eof_ = true;
      stack.tcp_finish(id_);
      context.kick();
      return;
    }
    if (ec) return fail(context);
  }
  read_upstream(context);
}

void TcpRelay::fail(EgressContext& context) {
  closed_ = true;
  context.stack.tcp_abort(id_);
  context.kick();
  close_socket();
}

void TcpRelay::close_socket() {
  error_code ignored;
  socket_.close(ignored);
}

void TcpRelay::stop() {
  closed_ = true;
  deadline_.cancel();
  close_socket();
}

}  // namespace sandboxd::net
