#include "daemon/api/ws_connection.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/serialize.hpp>

#include <spdlog/spdlog.h>

#include "protocol/ws/binary_frame.hpp"

namespace sandboxd::api {
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;

WsConnection::WsConnection(Socket socket, std::string owner, std::string id, session::SandboxService& service,
                           const ConnectionSettings& settings)
    : ws_(std::move(socket)), owner_(std::move(owner)), id_(std::move(id)), service_(service), settings_(settings) {}

WsConnection::~WsConnection() = default;

void WsConnection::start(UpgradeRequest request, std::function<void(WsConnection*)> on_closed) {
  on_closed_ = std::move(on_closed);
  ws_.read_message_max(settings_.max_frame_bytes);
  ws_.auto_fragment(false);
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(30);
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [name = settings_.server_name](websocket::response_type& res) { res.set(beast::http::field::server, name); }));
  auto self = shared_from_this();
  ws_.async_accept(request, [self](const boost::system::error_code& ec) {
    if (ec) {
      spdlog::info("connection {}: WebSocket handshake failed: {}", self->id_, ec.message());
      self->cleanup();
      return;
    }
    spdlog::info("connection {} open (owner {})", self->id_, self->owner_);
    json::object hello{{"type", "hello"}, {"protocol", kProtocolVersion}, {"server", self->settings_.server_name},
                       {"connection", self->id_}, {"limits", self->settings_.limits}};
    self->send_text(std::make_shared<const std::string>(json::serialize(hello)));
    self->read_next();
  });
}

bool WsConnection::stdin_blocked() const {
  for (const auto& [id, weak] : attached_) {
    auto exec = weak.lock();
    if (exec && exec->stdin_backlog() >= session::Exec::kStdinBacklogLimit) return true;
  }
  return false;
}

void WsConnection::read_next() {
  if (closed_ || closing_ || reading_) return;
  // Stdin the guest has not taken yet holds the whole connection back, as
  // TCP would: reading on would only grow the backlog.
  if (stdin_blocked()) {
    read_paused_ = true;
    return;
  }
  read_paused_ = false;
  reading_ = true;
  ws_.async_read(read_buffer_, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
    self->on_read(ec, n);
  });
}

void WsConnection::on_read(const boost::system::error_code& ec, std::size_t) {
  reading_ = false;
  if (ec) {
    if (ec == websocket::error::message_too_big) {
      spdlog::info("connection {}: message above max_frame_bytes, closing with 1009", id_);
    } else if (ec != websocket::error::closed && ec != boost::asio::error::operation_aborted) {
      spdlog::info("connection {} ended: {}", id_, ec.message());
    }
    // Beast has already sent the close frame for a protocol violation (1009
    // for a message above read_message_max); nothing more can be written.
    cleanup();
    return;
  }
  if (ws_.got_text()) {
    std::string text = beast::buffers_to_string(read_buffer_.data());
    read_buffer_.consume(read_buffer_.size());
    handle_text(text);
  } else {
    auto data = read_buffer_.data();
    ByteSpan bytes(static_cast<const std::byte*>(data.data()), data.size());
    handle_binary(bytes);
    read_buffer_.consume(read_buffer_.size());
  }
  read_next();
}

void WsConnection::stdin_room() {
  if (read_paused_) read_next();
}

void WsConnection::handle_binary(ByteSpan data) {
  auto frame = protocol::ws::parse_binary_frame(data);
  if (!frame) return fail(nullptr, {ErrorCode::kBadFrame, frame.error().reason, {}});
  if (protocol::ws::is_output(frame->kind))
    return fail(nullptr, {ErrorCode::kBadFrame, "output frames go from the server to the client only", {}});
  std::string exec_id(frame->exec_id);
  auto it = attached_.find(exec_id);
  auto exec = it == attached_.end() ? nullptr : it->second.lock();
  if (!exec) {
    ApiError e{ErrorCode::kUnknownExec, "this connection is not attached to exec " + exec_id, {}};
    e.details["exec"] = exec_id;
    return fail(nullptr, e);
  }
  if (auto ok = exec->check_control(this); !ok) return fail(nullptr, ok.error());
  if (auto ok = exec->write_stdin(frame->data, frame->kind == protocol::ws::BinaryKind::kStdinEof); !ok)
    return fail(nullptr, ok.error());
}

void WsConnection::handle_text(std::string_view text) {
  auto parsed = parse_envelope(text);
  if (parsed.error) return fail(parsed.envelope.id, *parsed.error);
  if (pending_ >= settings_.max_pending_requests) {
    return fail(parsed.envelope.id, {ErrorCode::kTooManyPending,
                                     "more than " + std::to_string(settings_.max_pending_requests) +
                                         " requests in flight on this connection",
                                     {}});
  }
  dispatch(parsed.envelope);
}

void WsConnection::dispatch(Envelope& request) {
  const auto& id = request.id;
  const auto& m = request.members;
  const std::string& op = request.op;
  if (op == "hello") return op_hello(id, m);
  if (service_.shutting_down() && (op == "sandbox.create" || op == "exec.start"))
    return fail(id, {ErrorCode::kShuttingDown, "the daemon is shutting down", {}});
  if (op == "sandbox.create") return op_sandbox_create(id, m);
  if (op == "sandbox.list") return op_sandbox_list(id, m);
  if (op == "sandbox.get") return op_sandbox_get(id, m);
  if (op == "sandbox.destroy") return op_sandbox_destroy(id, m);
  if (op == "sandbox.subscribe") return op_sandbox_subscribe(id, m, true);
  if (op == "sandbox.unsubscribe") return op_sandbox_subscribe(id, m, false);
  if (op == "exec.start") return op_exec_start(id, m);
  if (op == "exec.attach") return op_exec_attach(id, m);
  if (op == "exec.detach") return op_exec_detach(id, m);
  if (op == "exec.get") return op_exec_get(id, m);
  if (op == "exec.list") return op_exec_list(id, m);
  if (op == "exec.resize" || op == "exec.signal" || op == "exec.kill" || op == "exec.close_stdin")
    return op_exec_control(id, m, op);
  ApiError e{ErrorCode::kUnknownOp, "unknown operation '" + op.substr(0, 64) + "'", {}};
  e.details["op"] = op.substr(0, 64);
  fail(id, e);
}

void WsConnection::op_hello(const json::value& id, const json::object& m) {
  auto version = parse_hello_version(m);
  if (!version) return fail(id, version.error());
  if (*version != kProtocolVersion) {
    ApiError e{ErrorCode::kUnsupportedProtocol, "this server speaks protocol 1", {}};
    e.details["supported"] = json::array{kProtocolVersion};
    return fail(id, e);
  }
  respond(id, {{"protocol", kProtocolVersion}});
}

void WsConnection::op_sandbox_create(const json::value& id, const json::object& m) {
  auto params = parse_create_sandbox(m);
  if (!params) return fail(id, params.error());
  ++pending_;
  std::weak_ptr<WsConnection> weak = weak_from_this();
  service_.create(owner_, *params, [weak, id](Expected<std::shared_ptr<session::Sandbox>, ApiError> r) {
    auto self = weak.lock();
    if (!self) return;
    --self->pending_;
    if (!r) return self->fail(id, r.error());
    self->respond(id, {{"sandbox", (*r)->info()}});
  });
}

void WsConnection::op_sandbox_list(const json::value& id, const json::object& m) {
  auto filter = parse_label_filter(m);
  if (!filter) return fail(id, filter.error());
  json::array list;
  for (const auto& s : service_.list(owner_, *filter)) list.push_back(s->info());
  respond(id, {{"sandboxes", std::move(list)}});
}

void WsConnection::op_sandbox_get(const json::value& id, const json::object& m) {
  auto sandbox_id = parse_sandbox_id(m);
  if (!sandbox_id) return fail(id, sandbox_id.error());
  auto s = service_.find(owner_, *sandbox_id);
  if (!s) return fail(id, s.error());
  respond(id, {{"sandbox", (*s)->info()}});
}

void WsConnection::op_sandbox_destroy(const json::value& id, const json::object& m) {
  auto sandbox_id = parse_sandbox_id(m);
  if (!sandbox_id) return fail(id, sandbox_id.error());
  ++pending_;
  std::weak_ptr<WsConnection> weak = weak_from_this();
  service_.destroy(owner_, *sandbox_id, [weak, id](Expected<std::shared_ptr<session::Sandbox>, ApiError> r) {
    auto self = weak.lock();
    if (!self) return;
    --self->pending_;
    if (!r) return self->fail(id, r.error());
    self->respond(id, {{"sandbox", (*r)->info()}});
  });
}

void WsConnection::op_sandbox_subscribe(const json::value& id, const json::object& m, bool subscribe) {
  auto sandbox_id = parse_sandbox_id(m);
  if (!sandbox_id) return fail(id, sandbox_id.error());
  auto s = service_.find(owner_, *sandbox_id);
  if (!s) return fail(id, s.error());
  if (subscribe) {
    (*s)->subscribe(shared_from_this());
    subscribed_[*sandbox_id] = *s;
  } else {
    (*s)->unsubscribe(this);
    subscribed_.erase(*sandbox_id);
  }
  respond(id, {});
}

void WsConnection::op_exec_start(const json::value& id, const json::object& m) {
  auto params = parse_exec_start(m);
  if (!params) return fail(id, params.error());
  auto started = service_.start_exec(owner_, std::move(*params));
  if (!started) return fail(id, started.error());
  auto exec = started->exec;
  // The response goes out before the exec's first entries: attach after it.
  respond(id, {{"exec", exec->info()}, {"existing", started->existing}});
  if (!started->existing) {
    attached_[exec->id()] = exec;
    (void)exec->attach(shared_from_this(), 0, false);
  }
}

void WsConnection::op_exec_attach(const json::value& id, const json::object& m) {
  auto params = parse_attach(m);
  if (!params) return fail(id, params.error());
  auto exec = service_.find_exec(owner_, params->exec_id);
  if (!exec) return fail(id, exec.error());
  // Check first, answer, then replay: the replay must follow the response.
  if (params->after_seq + 1 < (*exec)->first_seq()) {
    auto r = (*exec)->attach(shared_from_this(), params->after_seq, params->read_only);
    return fail(id, r.error());
  }
  respond(id, {{"exec", (*exec)->info()}});
  attached_[params->exec_id] = *exec;
  (void)(*exec)->attach(shared_from_this(), params->after_seq, params->read_only);
}

void WsConnection::op_exec_detach(const json::value& id, const json::object& m) {
  auto exec_id = parse_exec_id(m);
  if (!exec_id) return fail(id, exec_id.error());
  auto exec = service_.find_exec(owner_, *exec_id);
  if (!exec) return fail(id, exec.error());
  (*exec)->detach(this);
  attached_.erase(*exec_id);
  respond(id, {});
  if (read_paused_) read_next();
}

void WsConnection::op_exec_get(const json::value& id, const json::object& m) {
  auto exec_id = parse_exec_id(m);
  if (!exec_id) return fail(id, exec_id.error());
  auto exec = service_.find_exec(owner_, *exec_id);
  if (!exec) return fail(id, exec.error());
  respond(id, {{"exec", (*exec)->info()}});
}

void WsConnection::op_exec_list(const json::value& id, const json::object& m) {
  auto sandbox = parse_optional_sandbox_id(m);
  if (!sandbox) return fail(id, sandbox.error());
  json::array list;
  for (const auto& e : service_.list_execs(owner_, *sandbox)) list.push_back(e->info());
  respond(id, {{"execs", std::move(list)}});
}

void WsConnection::op_exec_control(const json::value& id, const json::object& m, const std::string& op) {
  auto exec_id = parse_exec_id(m);
  if (!exec_id) return fail(id, exec_id.error());
  auto exec = service_.find_exec(owner_, *exec_id);
  if (!exec) return fail(id, exec.error());
  auto& e = **exec;
  // Any connection of the owner may control an exec, except one that
  // attached to it read-only.
  if (e.is_attached(this)) {
    if (auto ok = e.check_control(this); !ok) return fail(id, ok.error());
  }
  Expected<void, ApiError> done;
  if (op == "exec.resize") {
    auto p = parse_resize(m);
    if (!p) return fail(id, p.error());
    done = e.resize(p->cols, p->rows);
  } else if (op == "exec.signal") {
    auto p = parse_signal(m);
    if (!p) return fail(id, p.error());
    done = e.signal(p->signo);
  } else if (op == "exec.kill") {
    done = e.kill();
  } else {
    done = e.write_stdin({}, true);
  }
  if (!done) return fail(id, done.error());
  respond(id, {});
}

void WsConnection::respond(const json::value& id, json::object result) {
  json::object frame{{"type", "response"}, {"id", id}, {"result", std::move(result)}};
  send_text(std::make_shared<const std::string>(json::serialize(frame)));
}

void WsConnection::fail(const json::value& id, const ApiError& error) {
  json::object frame{{"type", "error"}, {"id", id}, {"code", to_string(error.code)}, {"message", error.message}};
  for (const auto& kv : error.details) frame[kv.key()] = kv.value();
  send_text(std::make_shared<const std::string>(json::serialize(frame)));
}

void WsConnection::send_text(std::shared_ptr<const std::string> text) { enqueue({false, std::move(text), nullptr}); }

void WsConnection::send_sandbox_event(std::shared_ptr<const std::string> event) { send_text(std::move(event)); }

void WsConnection::send_entry(session::SharedEntry entry) {
  bool binary = entry->binary;
  enqueue({binary, nullptr, std::move(entry)});
}

void WsConnection::enqueue(Outgoing out) {
  if (closed_ || closing_) return;
  queued_bytes_ += out.bytes().size();
  queue_.push_back(std::move(out));
  if (queued_bytes_ > kMaxQueued) {
    spdlog::warn("connection {}: client does not read ({} bytes queued), closing", id_, queued_bytes_);
    shut(websocket::close_code::policy_error, "the client does not read what it is sent");
    return;
  }
  write_next();
}

void WsConnection::write_next() {
  if (writing_ || closed_) return;
  if (queue_.empty()) {
    if (close_after_writes_ && !closing_) {
      closing_ = true;
      writing_ = true;
      ws_.async_close(*close_after_writes_, [self = shared_from_this()](const boost::system::error_code&) {
        self->writing_ = false;
        self->cleanup();
      });
    }
    return;
  }
  writing_ = true;
  const Outgoing& out = queue_.front();
  ws_.binary(out.binary);
  ws_.async_write(boost::asio::buffer(out.bytes()), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                                 std::size_t) {
    self->writing_ = false;
    if (ec || self->closed_) {
      self->cleanup();
      return;
    }
    self->queued_bytes_ -= self->queue_.front().bytes().size();
    self->queue_.pop_front();
    // Room again: let attached execs send what waits in their logs.
    std::vector<std::shared_ptr<session::Exec>> execs;
    for (auto& [id, weak] : self->attached_) {
      if (auto e = weak.lock()) execs.push_back(e);
    }
    for (auto& e : execs) {
      if (!self->can_send()) break;
      e->pump();
    }
    self->write_next();
  });
}

void WsConnection::shut(websocket::close_code code, std::string reason) {
  if (closed_ || close_after_writes_) return;
  if (code == websocket::close_code::policy_error) {
    // Nothing queued matters to a client that does not read.
    if (!queue_.empty() && writing_) queue_.erase(queue_.begin() + 1, queue_.end());
    else queue_.clear();
  }
  close_after_writes_ = websocket::close_reason(code, reason);
  write_next();
}

void WsConnection::close_for_shutdown() { shut(websocket::close_code::going_away, "the daemon is shutting down"); }

void WsConnection::cleanup() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, weak] : attached_) {
    if (auto e = weak.lock()) e->detach(this);
  }
  attached_.clear();
  for (auto& [id, weak] : subscribed_) {
    if (auto s = weak.lock()) s->unsubscribe(this);
  }
  subscribed_.clear();
  queue_.clear();
  queued_bytes_ = 0;
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws_).shutdown(Socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws_).close(ignored);
  spdlog::info("connection {} closed", id_);
  if (auto done = std::move(on_closed_)) {
    // Not from inside our own handlers: the server's release may be the last owner.
    boost::asio::post(ws_.get_executor(), [done = std::move(done), self = shared_from_this()] { done(self.get()); });
  }
}

}  // namespace sandboxd::api
