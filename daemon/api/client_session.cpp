#include "daemon/api/client_session.hpp"

#include <boost/json/serialize.hpp>

#include <spdlog/spdlog.h>

#include "daemon/api/operations.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/api/wire_format.hpp"
#include "protocol/ws/binary_frame.hpp"

namespace sandboxd::api {
namespace json = boost::json;

ClientSession::ClientSession(std::shared_ptr<WsConnection> connection, std::string owner,
                             session::SandboxService& service, const ConnectionConfig& config, const Hello& hello)
    : connection_(std::move(connection)), owner_(std::move(owner)), service_(service), config_(config), hello_(hello) {}

void ClientSession::start(WsConnection::UpgradeRequest request, std::function<void(ClientSession*)> on_closed) {
  on_closed_ = std::move(on_closed);
  connection_->start(std::move(request), weak_from_this());
}

void ClientSession::close_for_shutdown() {
  connection_->close(WsConnection::CloseCode::going_away, "the daemon is shutting down");
}

void ClientSession::on_open() {
  spdlog::info("connection {} open (owner {})", connection_->id(), owner_);
  json::object hello{{"type", "hello"}, {"protocol", kProtocolVersion}, {"server", hello_.server_name},
                     {"connection", connection_->id()}, {"limits", hello_.limits}};
  send_text(json::serialize(hello));
}

void ClientSession::on_text(std::string_view text) {
  auto parsed = parse_envelope(text);
  if (parsed.error) return fail(parsed.envelope.id, *parsed.error);
  if (pending_ >= config_.max_pending_requests) {
    return fail(parsed.envelope.id, {ErrorCode::kTooManyPending,
                                     "more than " + std::to_string(config_.max_pending_requests) +
                                         " requests waiting for an answer on this connection",
                                     {}});
  }
  Operation op = find_operation(parsed.envelope.op);
  if (!op) {
    std::string name = parsed.envelope.op.substr(0, 64);
    ApiError e{ErrorCode::kUnknownOp, "unknown operation '" + name + "'", {}};
    e.details["op"] = name;
    return fail(parsed.envelope.id, e);
  }
  op(*this, {parsed.envelope.id, parsed.envelope.members});
}

void ClientSession::on_binary(ByteSpan data) {
  auto frame = protocol::ws::parse_binary_frame(data);
  if (!frame) return fail(nullptr, {ErrorCode::kBadFrame, frame.error().reason, {}});
  std::string exec_id(frame->exec_id);
  if (frame->kind == protocol::ws::BinaryKind::kFileUpload) {
    transfers_.on_upload(*this, exec_id, frame->data);
    if (transfers_.blocked()) connection_->pause_reading();
    return;
  }
  // Every error about a well-formed frame names its exec, so a client
  // feeding several can tell which one was refused.
  auto refuse = [&](ApiError e) {
    e.details["exec"] = exec_id;
    fail(nullptr, e);
  };
  if (protocol::ws::is_output(frame->kind))
    return refuse({ErrorCode::kBadFrame, "output frames go from the server to the client only", {}});
  auto it = attached_.find(exec_id);
  auto exec = it == attached_.end() ? nullptr : it->second.lock();
  if (!exec) return refuse({ErrorCode::kUnknownExec, "this connection is not attached to exec " + exec_id, {}});
  if (auto ok = exec->check_control(this); !ok) return refuse(ApiError::from_domain(ok.error()));
  if (auto ok = exec->write_stdin(frame->data, frame->kind == protocol::ws::BinaryKind::kStdinEof); !ok)
    return refuse(ApiError::from_domain(ok.error()));
  // Stdin the guest has not taken yet holds the whole connection back, as
  // TCP would: reading on would only grow the backlog.
  if (stdin_blocked()) connection_->pause_reading();
}

bool ClientSession::stdin_blocked() const {
  for (const auto& [id, weak] : attached_) {
    auto exec = weak.lock();
    if (exec && exec->stdin_backlog() >= session::Exec::kStdinBacklogLimit) return true;
  }
  return false;
}

void ClientSession::stdin_room() {
  if (connection_->reading_paused() && !stdin_blocked() && !transfers_.blocked()) connection_->resume_reading();
}

void ClientSession::on_room() {
  transfers_.on_room(*this);
  // Room again: let attached execs send what waits in their logs.
  std::vector<std::shared_ptr<session::Exec>> execs;
  for (auto& [id, weak] : attached_) {
    if (auto e = weak.lock()) execs.push_back(e);
  }
  for (auto& e : execs) {
    if (!connection_->can_send()) break;
    e->pump();
  }
}

void ClientSession::on_closed() {
  transfers_.close_all();
  auto attached = std::move(attached_);
  for (auto& [id, weak] : attached) {
    if (auto e = weak.lock()) e->detach(this);
  }
  auto subscribed = std::move(subscribed_);
  for (auto& [id, weak] : subscribed) {
    if (auto s = weak.lock()) s->unsubscribe(this);
  }
  if (auto done = std::move(on_closed_)) done(this);
}

void ClientSession::detached(const std::string& exec_id) {
  attached_.erase(exec_id);
  stdin_room();  // the exec whose stdin held the connection may be the one let go
}

void ClientSession::subscribed(const std::shared_ptr<session::Sandbox>& sandbox) {
  sandbox->subscribe(shared_from_this());
  subscribed_[sandbox->id()] = sandbox;
}

void ClientSession::unsubscribed(const std::string& sandbox_id) {
  auto it = subscribed_.find(sandbox_id);
  if (it == subscribed_.end()) return;
  if (auto s = it->second.lock()) s->unsubscribe(this);
  subscribed_.erase(it);
}

void ClientSession::send_sandbox_state(const session::SandboxStateEvent& event) {
  send_text(sandbox_state_event(event));
}

void ClientSession::send_net_flow(const session::NetFlowEvent& event) { send_text(net_flow_event(event)); }

Expected<session::SandboxService::Started, session::Error> ClientSession::starting_exec(
    const std::function<Expected<session::SandboxService::Started, session::Error>()>& start) {
  starting_exec_ = true;
  auto started = start();
  starting_exec_ = false;
  auto held = std::move(held_events_);
  for (auto& [exec_id, entry] : held) {
    if (started && !started->existing && exec_id == started->exec->id()) continue;
    send_exec_event(exec_id, std::move(entry));
  }
  return started;
}

void ClientSession::send_exec_event(const std::string& exec_id, session::SharedEntry entry) {
  if (starting_exec_) {
    held_events_.emplace_back(exec_id, std::move(entry));
    return;
  }
  if (attached_.contains(exec_id)) return;  // the attachment delivers it, in order with the output
  connection_->send_text(std::shared_ptr<const std::string>(entry, &entry->message));
}

void ClientSession::respond(const json::value& id, json::object result) {
  json::object frame{{"type", "response"}, {"id", id}, {"result", std::move(result)}};
  send_text(json::serialize(frame));
}

void ClientSession::fail(const json::value& id, const ApiError& error) {
  json::object frame{{"type", "error"}, {"id", id}, {"code", to_string(error.code)}, {"message", error.message}};
  for (const auto& kv : error.details) frame[kv.key()] = kv.value();
  send_text(json::serialize(frame));
}

void ClientSession::send_text(std::string text) {
  connection_->send_text(std::make_shared<const std::string>(std::move(text)));
}

}  // namespace sandboxd::api
