#include "daemon/api/ws_connection.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include <spdlog/spdlog.h>

namespace sandboxd::api {
namespace beast = boost::beast;
namespace websocket = beast::websocket;

WsConnection::WsConnection(Socket socket, std::string id, std::size_t max_message_bytes, std::string server_name)
    : ws_(std::move(socket)),
      id_(std::move(id)),
      max_message_bytes_(max_message_bytes),
      server_name_(std::move(server_name)),
      write_deadline_(ws_.get_executor()) {
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws_).set_option(boost::asio::socket_base::send_buffer_size(kSocketSendBuffer), ignored);
}

WsConnection::~WsConnection() = default;

void WsConnection::start(UpgradeRequest request, std::weak_ptr<Handler> handler) {
  handler_ = std::move(handler);
  ws_.read_message_max(max_message_bytes_);
  ws_.auto_fragment(false);
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = kHandshakeTimeout;  // also bounds the closing handshake
  timeouts.idle_timeout = kIdleTimeout;
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [name = server_name_](websocket::response_type& res) { res.set(beast::http::field::server, name); }));
  ws_.async_accept(request, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) {
      spdlog::info("connection {}: WebSocket handshake failed: {}", self->id_, ec.message());
      self->finish();
      return;
    }
    self->open_ = true;
    if (auto h = self->handler()) h->on_open();
    if (self->closing_) self->write_next();
    self->read_next();
  });
}

void WsConnection::read_next() {
  if (finished_ || reading_ || !open_) return;
  if (read_paused_ && !closing_) return;
  reading_ = true;
  ws_.async_read(read_buffer_, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
    self->on_read(ec);
  });
}

void WsConnection::on_read(const boost::system::error_code& ec) {
  reading_ = false;
  if (ec) {
    if (ec == websocket::error::message_too_big) {
      spdlog::info("connection {}: message above max_frame_bytes, closed with 1009", id_);
    } else if (ec != websocket::error::closed && ec != boost::asio::error::operation_aborted) {
      spdlog::info("connection {} ended: {}", id_, ec.message());
    }
    // Beast sent the close frame itself for a protocol violation (1009, ...)
    // and tore the stream down; a closing handshake of ours still running
    // finishes on its own; a data write still running can only fail now.
    if (writing_ && !close_sent_) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(ws_).close(ignored);
    }
    if (!writing_) finish();
    return;
  }
  if (closing_) {
    // A close is decided: what the client still sends is not acted on.
    read_buffer_.consume(read_buffer_.size());
    return read_next();
  }
  auto h = handler();
  if (ws_.got_text()) {
    std::string text = beast::buffers_to_string(read_buffer_.data());
    read_buffer_.consume(read_buffer_.size());
    if (h) h->on_text(text);
  } else {
    auto data = read_buffer_.data();
    ByteSpan bytes(static_cast<const std::byte*>(data.data()), data.size());
    if (h) h->on_binary(bytes);
    read_buffer_.consume(read_buffer_.size());
  }
  read_next();
}

void WsConnection::resume_reading() {
  read_paused_ = false;
  read_next();
}

void WsConnection::send_text(std::shared_ptr<const std::string> text) { enqueue({false, std::move(text), nullptr}); }

void WsConnection::send_binary(std::shared_ptr<const std::string> data) { enqueue({true, std::move(data), nullptr}); }

void WsConnection::send_entry(session::SharedEntry entry) {
  bool binary = entry->binary;
  enqueue({binary, nullptr, std::move(entry)});
}

void WsConnection::enqueue(Outgoing out) {
  if (closing_ || finished_) return;
  std::size_t size = out.bytes().size();
  queued_bytes_ += size;
  if (out.is_text()) queued_text_bytes_ += size;
  queue_.push_back(std::move(out));
  // More than one message of responses and events waiting beyond the one
  // being written: a client that reads would have taken them.
  std::size_t waiting = queue_.size() - (writing_ ? 1 : 0);
  if (queued_text_bytes_ > kMaxQueuedText && waiting > 1) {
    spdlog::warn("connection {}: the client does not read ({} bytes of responses and events wait), closing with 1008",
                 id_, queued_text_bytes_);
    close(websocket::close_code::policy_error, "the client does not read what it is sent");
    return;
  }
  write_next();
}

void WsConnection::write_next() {
  if (writing_ || finished_ || !open_) return;
  if (queue_.empty()) {
    if (closing_ && !close_sent_) {
      close_sent_ = true;
      writing_ = true;
      arm_write_deadline();
      ws_.async_close(*close_reason_, [self = shared_from_this()](const boost::system::error_code&) {
        self->writing_ = false;
        self->write_deadline_.cancel();
        // The handshake is over (or failed): the stream is torn down.
        boost::system::error_code ignored;
        beast::get_lowest_layer(self->ws_).close(ignored);
        if (!self->reading_) self->finish();
      });
    }
    return;
  }
  writing_ = true;
  const Outgoing& out = queue_.front();
  if (out.is_text()) queued_text_bytes_ -= out.bytes().size();  // in flight, no longer waiting
  ws_.binary(out.binary);
  arm_write_deadline();
  ws_.async_write(boost::asio::buffer(out.bytes()),
                  [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) { self->on_written(ec); });
}

void WsConnection::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  write_deadline_.cancel();
  if (!queue_.empty()) {
    queued_bytes_ -= queue_.front().bytes().size();
    queue_.pop_front();
  }
  if (ec || finished_) {
    boost::system::error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);  // the read in flight ends too
    if (!reading_) finish();
    return;
  }
  if (!closing_ && can_send()) {
    if (auto h = handler()) h->on_room();
  }
  write_next();
}

void WsConnection::arm_write_deadline() {
  write_deadline_.expires_after(kWriteDeadline);
  std::weak_ptr<WsConnection> weak = weak_from_this();
  write_deadline_.async_wait([weak](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->finished_) return;
    spdlog::warn("connection {}: a write did not complete within {} s; the client does not read, closing", self->id_,
                 kWriteDeadline.count());
    // Nothing can be written to a client that takes nothing: end it here.
    boost::system::error_code ignored;
    beast::get_lowest_layer(self->ws_).close(ignored);
  });
}

void WsConnection::drop_unsent() {
  // The message being written stays: it is part-way onto the wire.
  std::size_t keep = writing_ ? 1 : 0;
  while (queue_.size() > keep) {
    const Outgoing& out = queue_.back();
    queued_bytes_ -= out.bytes().size();
    if (out.is_text()) queued_text_bytes_ -= out.bytes().size();
    queue_.pop_back();
  }
}

void WsConnection::close(CloseCode code, std::string reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  close_reason_ = websocket::close_reason(code, reason);
  drop_unsent();
  write_next();
  read_next();  // drains, even when paused
}

void WsConnection::finish() {
  if (finished_) return;
  finished_ = true;
  write_deadline_.cancel();
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws_).close(ignored);
  queue_.clear();
  queued_bytes_ = 0;
  queued_text_bytes_ = 0;
  spdlog::info("connection {} closed", id_);
  // Not from inside our own handlers: the layer above may drop its last
  // reference to this connection when it hears of the close.
  boost::asio::post(ws_.get_executor(), [self = shared_from_this()] {
    if (auto h = self->handler()) h->on_closed();
  });
}

}  // namespace sandboxd::api
