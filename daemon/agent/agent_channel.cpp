#include "daemon/agent/agent_channel.hpp"

#include <boost/asio/write.hpp>

#include "protocol/codec.hpp"

namespace sandboxd::agent {
namespace asio = boost::asio;

AgentChannel::AgentChannel(Socket socket) : socket_(std::move(socket)) {}

void AgentChannel::start(Handlers handlers) {
  handlers_ = std::move(handlers);
  do_read();
}

void AgentChannel::do_read() {
  socket_.async_read_some(asio::buffer(read_buf_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
}

void AgentChannel::on_read(const boost::system::error_code& ec, std::size_t n) {
  if (closed_) return;
  if (ec) {
    fail(ec);
    return;
  }
  decoder_.feed(ByteSpan(read_buf_.data(), n));
  while (auto result = decoder_.next()) {
    if (closed_) return;
    if (auto* message = std::get_if<protocol::Message>(&*result)) {
      handlers_.on_message(std::move(*message));
    } else {
      ++frame_errors_;
      handlers_.on_frame_error(std::get<protocol::FrameError>(*result));
    }
  }
  if (!closed_) do_read();
}

void AgentChannel::send(const protocol::Message& message) { send_raw(protocol::encode(message)); }

void AgentChannel::send_raw(Bytes bytes) {
  if (closed_) return;
  queued_bytes_ += bytes.size();
  write_queue_.push_back(std::move(bytes));
  if (!writing_) do_write();
}

void AgentChannel::do_write() {
  writing_ = true;
  asio::async_write(socket_, asio::buffer(write_queue_.front()),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                      self->on_write(ec, n);
                    });
}

void AgentChannel::on_write(const boost::system::error_code& ec, std::size_t n) {
  writing_ = false;
  if (closed_) return;
  if (ec) {
    fail(ec);
    return;
  }
  queued_bytes_ -= n;
  write_queue_.pop_front();
  if (!write_queue_.empty()) do_write();
}

void AgentChannel::fail(const boost::system::error_code& ec) {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  write_queue_.clear();
  queued_bytes_ = 0;
  if (handlers_.on_closed) handlers_.on_closed(ec);
}

void AgentChannel::close() { fail(asio::error::operation_aborted); }

}  // namespace sandboxd::agent
