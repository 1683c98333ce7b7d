// The byte stream under the control plane's WebSocket: a unix or TCP socket,
// with a teardown that lets the client hear the close frame.
//
// Beast ends a WebSocket by sending the close frame and then "tearing down"
// the stream. Its own teardown for sockets shuts down the sending side and
// then stops reading as soon as a read returns data at once, closing the
// socket with the client's bytes unread: the kernel answers that with a
// reset, and a client still writing (a message above max_frame_bytes, say)
// loses the close frame and sees 1006 instead of 1009. Beast looks the
// teardown up by argument-dependent lookup on the stream type, so this
// wrapper brings its own: shut down sending, then read and discard until the
// client closes its side, an error, or kLinger, and only then close.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <array>
#include <chrono>
#include <memory>
#include <utility>

namespace sandboxd::api {

class WsSocket {
 public:
  using next_layer_type = boost::asio::generic::stream_protocol::socket;
  using executor_type = next_layer_type::executor_type;
  // How long a closed connection is drained before it is closed regardless.
  static constexpr std::chrono::seconds kLinger{5};

  explicit WsSocket(next_layer_type socket) : socket_(std::move(socket)) {}

  executor_type get_executor() { return socket_.get_executor(); }
  next_layer_type& next_layer() { return socket_; }
  const next_layer_type& next_layer() const { return socket_; }

  template <class Buffers, class Handler>
  auto async_read_some(const Buffers& buffers, Handler&& handler) {
    return socket_.async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class Buffers, class Handler>
  auto async_write_some(const Buffers& buffers, Handler&& handler) {
    return socket_.async_write_some(buffers, std::forward<Handler>(handler));
  }

  friend void teardown(boost::beast::role_type, WsSocket& s, boost::system::error_code& ec) {
    s.socket_.shutdown(next_layer_type::shutdown_both, ec);
    s.socket_.close(ec);
  }

  template <class TeardownHandler>
  friend void async_teardown(boost::beast::role_type, WsSocket& s, TeardownHandler&& handler) {
    auto drain = std::make_shared<Drain<std::decay_t<TeardownHandler>>>(s.socket_, std::forward<TeardownHandler>(handler));
    drain->start();
  }

 private:
  template <class Handler>
  struct Drain : std::enable_shared_from_this<Drain<Handler>> {
    Drain(next_layer_type& s, Handler h) : socket(s), timer(s.get_executor()), handler(std::move(h)) {}
    next_layer_type& socket;
    boost::asio::steady_timer timer;
    std::array<char, 4096> buffer{};
    Handler handler;

    void start() {
      boost::system::error_code ignored;
      socket.shutdown(next_layer_type::shutdown_send, ignored);
      timer.expires_after(kLinger);
      timer.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
        boost::system::error_code ignored2;
        if (!ec) self->socket.close(ignored2);  // the pending read ends with an error
      });
      read();
    }
    void read() {
      socket.async_read_some(boost::asio::buffer(buffer),
                             [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                               if (!ec) return self->read();
                               self->finish(ec == boost::asio::error::eof ? boost::system::error_code{} : ec);
                             });
    }
    void finish(boost::system::error_code ec) {
      timer.cancel();
      boost::system::error_code ignored;
      socket.close(ignored);
      // Beast's handlers are not to be called from inside the initiation;
      // here we are in a completion already, so a direct call is fine.
      handler(ec);
    }
  };

  next_layer_type socket_;
};

}  // namespace sandboxd::api
