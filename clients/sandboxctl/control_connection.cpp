#include "clients/sandboxctl/control_connection.hpp"

#include <sys/un.h>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <utility>
#include <vector>

#include "clients/sandboxctl/json_access.hpp"

namespace sandboxd::ctl {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using boost::system::error_code;
using Socket = asio::generic::stream_protocol::socket;
using Endpoint = asio::generic::stream_protocol::endpoint;

// Connecting and upgrading over loopback takes milliseconds; a daemon that
// has not answered by then is stuck or is not a daemon.
constexpr auto kConnectTimeout = std::chrono::seconds(15);
// Bounds the closing handshake, so a silent peer cannot keep the client from
// exiting.
constexpr auto kCloseTimeout = std::chrono::seconds(5);

class BeastConnection final : public ControlConnection, public std::enable_shared_from_this<BeastConnection> {
 public:
  BeastConnection(asio::io_context& io, Handlers handlers)
      : ws_(io), resolver_(io), timer_(io), handlers_(std::move(handlers)) {}

  void connect(const WsUrl& url, const std::string& token, ConnectHandler done) override {
    connect_done_ = std::move(done);
    url_ = url;
    state_ = State::kConnecting;
    timer_.expires_after(kConnectTimeout);
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->state_ != State::kConnecting) return;
      self->timed_out_ = true;
      error_code ignored;
      self->resolver_.cancel();
      self->ws_.next_layer().close(ignored);
    });

    // Our own timer bounds connect and upgrade together. Beast's would stay
    // armed after a refused upgrade and keep the io_context running.
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = websocket::stream_base::none();
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "sandboxctl");
      if (!token.empty()) req.set(beast::http::field::authorization, "Bearer " + token);
    }));

    if (url.transport == WsUrl::Transport::kUnix) {
      if (url.socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
        return fail_connect({ConnectError::Kind::kNetwork, 0, "the socket path is too long for a unix socket"});
      }
      std::vector<Endpoint> endpoints{Endpoint(asio::local::stream_protocol::endpoint(url.socket_path))};
      return connect_next(std::move(endpoints), 0, error_code());
    }
    resolver_.async_resolve(url.host, std::to_string(url.port),
                            [self = shared_from_this()](const error_code& ec,
                                                        const asio::ip::tcp::resolver::results_type& results) {
                              if (ec) return self->fail_connect(self->network_error(ec));
                              std::vector<Endpoint> endpoints;
                              for (const auto& entry : results) endpoints.emplace_back(entry.endpoint());
                              self->connect_next(std::move(endpoints), 0, error_code());
                            });
  }

  void request(json::object request, ResponseHandler done) override {
    if (state_ != State::kOpen) {
      asio::post(ws_.get_executor(), [done = std::move(done)] { done(Unexpected{lost_error()}); });
      return;
    }
    std::int64_t id = next_id_++;
    request["id"] = id;
    pending_.emplace(id, std::move(done));
    enqueue({true, json::serialize(request), nullptr});
  }

  void send_binary(Bytes frame, std::function<void(bool)> done) override {
    if (state_ != State::kOpen) {
      asio::post(ws_.get_executor(), [done = std::move(done)] { done(false); });
      return;
    }
    enqueue({false, std::string(as_chars(frame)), std::move(done)});
  }

  void close() override {
    if (state_ == State::kClosed || state_ == State::kClosing) return;
    bool was_open = state_ == State::kOpen;
    state_ = State::kClosing;
    pending_.clear();
    for (auto& item : queue_) item.done = nullptr;
    if (!was_open) {
      error_code ignored;
      timer_.cancel();
      resolver_.cancel();
      ws_.next_layer().close(ignored);
      state_ = State::kClosed;
      return;
    }
    if (!writing_) start_close();
  }

  bool open() const override { return state_ == State::kOpen; }
  const json::object& hello() const override { return hello_; }

 private:
  enum class State { kIdle, kConnecting, kOpen, kClosing, kClosed };

  struct Outgoing {
    bool text;
    std::string data;
    std::function<void(bool)> done;
  };

  static RequestError lost_error() { return RequestError{true, "", "the connection to the daemon was lost", {}}; }

  ConnectError network_error(const error_code& ec) const {
    if (timed_out_) return {ConnectError::Kind::kNetwork, 0, "timed out"};
    return {ConnectError::Kind::kNetwork, 0, ec.message()};
  }

  void connect_next(std::vector<Endpoint> endpoints, std::size_t index, error_code last) {
    if (state_ != State::kConnecting) return;
    if (index >= endpoints.size()) {
      return fail_connect(network_error(last ? last : asio::error::host_not_found));
    }
    error_code ignored;
    ws_.next_layer().close(ignored);
    Endpoint endpoint = endpoints[index];
    ws_.next_layer().async_connect(
        endpoint, [self = shared_from_this(), endpoints = std::move(endpoints), index](const error_code& ec) mutable {
          if (self->state_ != State::kConnecting) return;
          if (ec) {
            if (self->timed_out_) return self->fail_connect(self->network_error(ec));
            return self->connect_next(std::move(endpoints), index + 1, ec);
          }
          self->on_connected();
        });
  }

  void on_connected() {
    if (url_.transport == WsUrl::Transport::kTcp) {
      // Keystrokes of an interactive shell are tiny frames: send them now.
      error_code ignored;
      ws_.next_layer().set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    ws_.async_handshake(upgrade_response_, url_.host_header, url_.target,
                        [self = shared_from_this()](const error_code& ec) { self->on_handshake(ec); });
  }

  void on_handshake(const error_code& ec) {
    if (state_ != State::kConnecting) return;
    if (ec) {
      if (timed_out_) return fail_connect(network_error(ec));
      int status = static_cast<int>(upgrade_response_.result_int());
      if (ec == websocket::error::upgrade_declined && status != 0 && status != 101) {
        auto kind = status == 401 ? ConnectError::Kind::kUnauthorized : ConnectError::Kind::kHttp;
        std::string message = "HTTP " + std::to_string(status);
        auto reason = upgrade_response_.reason();
        if (!reason.empty()) message += " " + std::string(reason);
        return fail_connect({kind, status, message});
      }
      if (ec.category() == asio::error::get_system_category() || ec == asio::error::eof ||
          ec == beast::error::timeout) {
        return fail_connect(network_error(ec));
      }
      return fail_connect({ConnectError::Kind::kProtocol, 0, "WebSocket upgrade failed: " + ec.message()});
    }
    timer_.cancel();
    state_ = State::kOpen;
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = kCloseTimeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    // Output chunks are at most 64 KiB, but a list of many sandboxes is one
    // text frame; allow what the daemon itself would accept and more.
    ws_.read_message_max(64u << 20);
    auto done = std::move(connect_done_);
    connect_done_ = nullptr;
    read_next();
    done(Expected<void, ConnectError>());
  }

  void fail_connect(ConnectError error) {
    if (state_ != State::kConnecting) return;
    state_ = State::kClosed;
    timer_.cancel();
    error_code ignored;
    ws_.next_layer().close(ignored);
    auto done = std::move(connect_done_);
    connect_done_ = nullptr;
    asio::post(ws_.get_executor(),
               [done = std::move(done), error = std::move(error)] { done(Unexpected{std::move(error)}); });
  }

  void read_next() {
    ws_.async_read(read_buffer_, [self = shared_from_this()](const error_code& ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(const error_code& ec) {
    if (state_ == State::kClosed) return;
    if (ec) {
      if (state_ == State::kClosing) {
        state_ = State::kClosed;
        return;
      }
      std::string why;
      if (ec == websocket::error::closed) {
        auto reason = ws_.reason();
        why = "the daemon closed the connection (" + std::to_string(reason.code);
        if (!reason.reason.empty()) why += ": " + std::string(reason.reason.c_str());
        why += ")";
      } else if (ec == asio::error::eof) {
        why = "the daemon closed the connection";
      } else {
        why = ec.message();
      }
      return lose(why);
    }
    auto data = read_buffer_.cdata();
    ByteSpan message(static_cast<const std::byte*>(data.data()), data.size());
    if (ws_.got_text()) {
      on_text(as_chars(message));
    } else {
      on_binary(message);
    }
    read_buffer_.consume(read_buffer_.size());
    // A handler may have closed the connection.
    if (state_ == State::kOpen || state_ == State::kClosing) read_next();
  }

  void on_text(std::string_view text) {
    error_code ec;
    json::value value = json::parse(text, ec);
    if (ec || !value.is_object()) return;  // not ours to answer; the daemon never sends such
    const auto& frame = value.get_object();
    auto type = string_member(frame, "type").value_or("");
    if (type == "event") {
      if (state_ == State::kOpen && handlers_.on_event) handlers_.on_event(frame);
      return;
    }
    if (type == "hello") {
      hello_ = frame;
      return;
    }
    if (type != "response" && type != "error") return;
    auto id = int_member(frame, "id");
    if (!id) {
      if (type == "error" && state_ == State::kOpen && handlers_.on_stray_error) handlers_.on_stray_error(frame);
      return;
    }
    auto it = pending_.find(*id);
    if (it == pending_.end()) return;
    auto done = std::move(it->second);
    pending_.erase(it);
    if (type == "response") {
      const auto* result = object_member(frame, "result");
      done(result ? *result : json::object());
    } else {
      RequestError error{false, string_member(frame, "code").value_or("internal"),
                         string_member(frame, "message").value_or(""), frame};
      done(Unexpected{std::move(error)});
    }
  }

  void on_binary(ByteSpan message) {
    auto frame = protocol::ws::parse_binary_frame(message);
    if (!frame || !protocol::ws::is_output(frame->kind)) return;
    if (state_ == State::kOpen && handlers_.on_output) handlers_.on_output(*frame);
  }

  void enqueue(Outgoing item) {
    queue_.push_back(std::move(item));
    if (!writing_) write_next();
  }

  void write_next() {
    if (queue_.empty()) {
      writing_ = false;
      if (state_ == State::kClosing) start_close();
      return;
    }
    writing_ = true;
    ws_.text(queue_.front().text);
    ws_.async_write(asio::buffer(queue_.front().data), [self = shared_from_this()](const error_code& ec, std::size_t) {
      self->on_written(ec);
    });
  }

  void on_written(const error_code& ec) {
    if (state_ == State::kClosed) return;
    if (ec) {
      writing_ = false;
      if (state_ == State::kClosing) {
        state_ = State::kClosed;
        return;
      }
      return lose(ec.message());
    }
    auto done = std::move(queue_.front().done);
    queue_.pop_front();
    if (done) done(true);
    write_next();
  }

  void start_close() {
    if (closing_started_) return;
    closing_started_ = true;
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](const error_code&) {
      self->state_ = State::kClosed;
      error_code ignored;
      self->ws_.next_layer().close(ignored);
    });
  }

  void lose(const std::string& why) {
    state_ = State::kClosed;
    error_code ignored;
    ws_.next_layer().close(ignored);
    auto pending = std::move(pending_);
    pending_.clear();
    // The queue stays: a write in progress still points into its front.
    std::vector<std::function<void(bool)>> unsent;
    for (auto& item : queue_)
      if (item.done) unsent.push_back(std::exchange(item.done, nullptr));
    for (auto& [id, done] : pending) done(Unexpected{lost_error()});
    for (auto& done : unsent) done(false);
    if (handlers_.on_lost) handlers_.on_lost(why);
  }

  websocket::stream<Socket> ws_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer timer_;
  Handlers handlers_;
  WsUrl url_;
  ConnectHandler connect_done_;
  websocket::response_type upgrade_response_;
  beast::flat_buffer read_buffer_;
  std::deque<Outgoing> queue_;
  std::map<std::int64_t, ResponseHandler> pending_;
  std::int64_t next_id_ = 1;
  json::object hello_;
  State state_ = State::kIdle;
  bool writing_ = false;
  bool timed_out_ = false;
  bool closing_started_ = false;
};

}  // namespace

std::shared_ptr<ControlConnection> ControlConnection::create(boost::asio::io_context& io, Handlers handlers) {
  return std::make_shared<BeastConnection>(io, std::move(handlers));
}

}  // namespace sandboxd::ctl
