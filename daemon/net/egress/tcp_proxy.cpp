#include "daemon/net/egress/tcp_proxy.hpp"

#include <boost/asio/write.hpp>

namespace sandboxd::net {
namespace asio = boost::asio;
using boost::system::error_code;
using asio::ip::tcp;

TcpProxy::TcpProxy(asio::any_io_executor executor, EgressContext& context, FlowId id)
    : context_(context), id_(id), socket_(executor), connect_timer_(executor) {}

void TcpProxy::connect(const tcp::endpoint& destination) {
  auto self = shared_from_this();
  connect_timer_.expires_after(kConnectTimeout);
  connect_timer_.async_wait([self](const error_code& ec) {
    if (!ec) self->socket_.close();  // the pending connect completes with an error
  });
  socket_.async_connect(destination, [self](const error_code& ec) {
    self->connect_timer_.cancel();
    if (!self->alive()) return;
    error_code option_error;
    if (!ec) self->socket_.non_blocking(true, option_error);
    if (ec || option_error) {
      ++self->context_.counters.tcp_connect_failed;
      self->closed_ = true;
      self->context_.stack.tcp_refuse(self->id_);
      self->context_.kick();
      error_code ignored;
      self->socket_.close(ignored);
      return;
    }
    ++self->context_.counters.tcp_connected;
    self->connected_ = true;
    self->socket_.set_option(tcp::no_delay(true), option_error);
    self->context_.stack.tcp_accept(self->id_, Clock::now());
    self->context_.kick();
    self->read_upstream();
    self->write_upstream();
  });
}

void TcpProxy::on_readable() { write_upstream(); }
void TcpProxy::on_writable() { read_upstream(); }

// ---- guest -> upstream ---------------------------------------------------

void TcpProxy::write_upstream() {
  if (!alive() || !connected_ || waiting_write_) return;
  NetStack& stack = context_.stack;
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
      context_.counters.bytes_to_upstream += n;
      stack.tcp_consume(id_, n);
      context_.kick();
    }
    if (ec == asio::error::would_block || (!ec && n < data.size())) return wait_writable();
    if (ec) return fail();
  }
}

void TcpProxy::wait_writable() {
  waiting_write_ = true;
  auto self = shared_from_this();
  socket_.async_wait(tcp::socket::wait_write, [self](const error_code& ec) {
    self->waiting_write_ = false;
    if (self->closed_ && !ec) return self->write_final();
    if (!self->alive()) return;
    if (ec) return self->fail();
    self->write_upstream();
  });
}

void TcpProxy::on_closed(std::string_view reason, Bytes leftover) {
  closed_ = true;
  if (reason != "closed" || !connected_) {
    error_code ignored;
    socket_.close(ignored);
    return;
  }
  // A graceful close: what the guest sent last still goes upstream, once the
  // socket can take it, and then the socket is closed.
  final_bytes_ = std::move(leftover);
  if (!waiting_write_) write_final();
}

void TcpProxy::write_final() {
  if (context_.stopped || final_bytes_.empty()) {
    error_code ignored;
    socket_.close(ignored);
    return;
  }
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(final_bytes_), [self](const error_code&, std::size_t) {
    error_code ignored;
    self->socket_.close(ignored);
  });
}

// ---- upstream -> guest ---------------------------------------------------

void TcpProxy::read_upstream() {
  if (!alive() || !connected_ || waiting_read_ || upstream_eof_) return;
  if (context_.stack.tcp_send_space(id_) == 0) return;  // a kTcpWritable event brings us back
  waiting_read_ = true;
  auto self = shared_from_this();
  socket_.async_wait(tcp::socket::wait_read, [self](const error_code& ec) {
    self->waiting_read_ = false;
    if (!self->alive()) return;
    if (ec) return self->fail();
    self->drain_upstream();
  });
}

void TcpProxy::drain_upstream() {
  NetStack& stack = context_.stack;
  Bytes& buffer = context_.read_buffer;
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    std::size_t space = stack.tcp_send_space(id_);
    if (space == 0) return;
    error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buffer.data(), std::min(space, buffer.size())), ec);
    if (n > 0) {
      context_.counters.bytes_from_upstream += n;
      stack.tcp_send(id_, ByteSpan(buffer).first(n));
      context_.kick();
    }
    if (ec == asio::error::would_block) break;
    if (ec == asio::error::eof) {
      upstream_eof_ = true;
      stack.tcp_finish(id_);
      context_.kick();
      return;
    }
    if (ec) return fail();
  }
  read_upstream();
}

void TcpProxy::fail() {
  closed_ = true;
  context_.stack.tcp_abort(id_);
  context_.kick();
  error_code ignored;
  socket_.close(ignored);
}

void TcpProxy::stop() {
  closed_ = true;
  connect_timer_.cancel();
  error_code ignored;
  socket_.close(ignored);
}

}  // namespace sandboxd::net
