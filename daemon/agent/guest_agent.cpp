#include "daemon/agent/guest_agent.hpp"

#include <algorithm>

namespace sandboxd::agent {
using namespace sandboxd::protocol;

GuestAgent::GuestAgent(std::shared_ptr<AgentChannel> channel) : channel_(std::move(channel)) {}

void GuestAgent::start(Handlers handlers) {
  handlers_ = std::move(handlers);
  auto weak = weak_from_this();
  channel_->start({
      .on_message =
          [weak](Message&& m) {
            if (auto self = weak.lock()) self->on_message(std::move(m));
          },
      .on_frame_error =
          [weak](const FrameError& e) {
            if (auto self = weak.lock()) {
              if (self->handlers_.on_protocol_problem)
                self->handlers_.on_protocol_problem(std::string("bad frame from guest: ") + to_string(e.code) + ": " + e.reason);
            }
          },
      .on_closed =
          [weak](const boost::system::error_code& ec) {
            if (auto self = weak.lock()) self->on_closed(ec ? ec.message() : "guest closed the control port");
          },
  });
}

GuestAgent::Exec* GuestAgent::find(std::uint32_t id) {
  auto it = execs_.find(id);
  return it == execs_.end() ? nullptr : &it->second;
}

std::uint32_t GuestAgent::start_exec(const ExecRequest& request, ExecObserver observer) {
  std::uint32_t id = next_exec_id_++;
  if (next_exec_id_ == 0) next_exec_id_ = 1;  // 0 means "no exec" in Error
  if (closed_) {
    if (observer.on_failed) observer.on_failed("the VM is gone");
    return id;
  }
  Exec& e = execs_.emplace(id, Exec{std::move(observer)}).first->second;
  e.pty = request.pty.has_value();
  channel_->send(ExecStart{id, request.argv, request.env, request.cwd, request.stdin_open, request.pty, request.user, request.builtin});
  return id;
}

std::size_t GuestAgent::stdin_credit(std::uint32_t id) const {
  auto it = execs_.find(id);
  if (it == execs_.end() || it->second.stdin_closed) return 0;
  return kStdinWindow - it->second.stdin_unacked;
}

std::size_t GuestAgent::write_stdin(std::uint32_t id, ByteSpan data, bool eof) {
  Exec* e = find(id);
  if (!e || e->stdin_closed) return 0;
  std::size_t take = std::min(data.size(), kStdinWindow - e->stdin_unacked);
  std::size_t sent = 0;
  do {
    std::size_t n = std::min<std::size_t>(take - sent, kMaxChunk);
    bool last = sent + n == take;
    Stdin msg{id, eof && last && take == data.size(), Bytes(data.begin() + static_cast<std::ptrdiff_t>(sent),
                                                            data.begin() + static_cast<std::ptrdiff_t>(sent + n))};
    if (n > 0 || msg.eof) channel_->send(msg);
    sent += n;
  } while (sent < take);
  e->stdin_unacked += take;
  if (eof && take == data.size()) e->stdin_closed = true;
  return take;
}

void GuestAgent::ack_output(std::uint32_t id, std::uint32_t bytes) {
  Exec* e = find(id);
  if (closed_ || !e) return;
  e->output_to_ack += bytes;
  if (e->output_to_ack >= kAckBatch) {
    channel_->send(OutputAck{id, e->output_to_ack});
    e->output_to_ack = 0;
  }
}

void GuestAgent::signal(std::uint32_t id, int signo) {
  if (!closed_ && execs_.count(id)) channel_->send(Signal{id, signo});
}

void GuestAgent::resize(std::uint32_t id, std::uint16_t cols, std::uint16_t rows) {
  Exec* e = find(id);
  if (!closed_ && e && e->pty) channel_->send(Resize{id, {cols, rows}});
}

void GuestAgent::ping(std::function<void()> on_pong) {
  std::uint64_t token = next_ping_++;
  pings_.emplace(token, std::move(on_pong));
  channel_->send(Ping{token});
}

void GuestAgent::shutdown() {
  if (!closed_) channel_->send(Shutdown{});
}

void GuestAgent::on_message(Message&& m) {
  auto problem = [&](const std::string& what) {
    if (handlers_.on_protocol_problem) handlers_.on_protocol_problem(what);
  };
  std::visit(
      [&](auto&& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, Hello>) {
          if (hello_) return problem("second hello from guest");
          hello_ = msg;
          if (handlers_.on_hello) handlers_.on_hello(*hello_);
        } else if constexpr (std::is_same_v<T, ExecStarted>) {
          Exec* e = find(msg.id);
          if (!e) return problem("exec-started for unknown exec " + std::to_string(msg.id));
          e->started = true;
          if (e->observer.on_started) e->observer.on_started(msg.pid);
        } else if constexpr (std::is_same_v<T, Output>) {
          Exec* e = find(msg.id);
          if (!e) return problem("output for unknown exec " + std::to_string(msg.id));
          e->observer.on_output(msg.stream, std::move(msg.data));
        } else if constexpr (std::is_same_v<T, StdinAck>) {
          Exec* e = find(msg.id);
          if (!e) return;  // acks may trail the exit
          if (msg.bytes > e->stdin_unacked) return problem("stdin ack beyond what was sent");
          e->stdin_unacked -= msg.bytes;
          if (e->observer.on_stdin_credit) e->observer.on_stdin_credit();
        } else if constexpr (std::is_same_v<T, Exit>) {
          auto it = execs_.find(msg.id);
          if (it == execs_.end()) return problem("exit for unknown exec " + std::to_string(msg.id));
          ExecObserver observer = std::move(it->second.observer);
          execs_.erase(it);
          if (observer.on_exit) observer.on_exit(msg);
        } else if constexpr (std::is_same_v<T, Error>) {
          auto it = msg.id != 0 ? execs_.find(msg.id) : execs_.end();
          // Refusals of a start end the exec; other errors about an exec
          // (an unknown id after it ended, a request it did not take) are
          // informational.
          bool refusal = msg.code == ErrorCode::kDuplicateExec || msg.code == ErrorCode::kTooManyExecs ||
                         msg.code == ErrorCode::kInvalidRequest;
          if (it != execs_.end() && !it->second.started && refusal) {
            ExecObserver observer = std::move(it->second.observer);
            execs_.erase(it);
            if (observer.on_failed) observer.on_failed(std::string(to_string(msg.code)) + ": " + msg.message);
            return;
          }
          problem(std::string("guest error ") + to_string(msg.code) + ": " + msg.message);
        } else if constexpr (std::is_same_v<T, Pong>) {
          auto it = pings_.find(msg.token);
          if (it == pings_.end()) return problem("pong with unknown token");
          auto done = std::move(it->second);
          pings_.erase(it);
          done();
        } else {
          problem(std::string("guest sent a host-only message: ") + to_string(type_of(Message{msg})));
        }
      },
      std::move(m));
}

void GuestAgent::on_closed(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  auto execs = std::move(execs_);
  execs_.clear();
  pings_.clear();
  for (auto& [id, e] : execs) {
    if (e.observer.on_failed) e.observer.on_failed("connection to the guest lost: " + reason);
  }
  if (handlers_.on_closed) handlers_.on_closed(reason);
}

}  // namespace sandboxd::agent
