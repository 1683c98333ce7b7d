#include "daemon/session/exec.hpp"

#include <signal.h>

#include <algorithm>

namespace sandboxd::session {

namespace {
Unexpected<Error> ended(const std::string& id) { return {Error{ErrorCode::kNotRunning, "exec " + id + " has ended"}}; }
}  // namespace

Exec::Exec(boost::asio::io_context& io, ExecSpec spec)
    : spec_(std::move(spec)),
      log_({spec_.id, spec_.sandbox_id}, spec_.log_capacity, *spec_.log_format),
      timer_(io),
      start_timer_(io) {}

Exec::~Exec() = default;

void Exec::start(std::weak_ptr<agent::GuestAgent> agent, agent::ExecRequest request,
                 std::function<void(SharedEntry)> on_event, std::function<void()> on_finished) {
  agent_ = std::move(agent);
  on_event_ = std::move(on_event);
  on_finished_ = std::move(on_finished);
  started_wall_ = std::chrono::system_clock::now();
  started_ = std::chrono::steady_clock::now();
  stdin_closed_ = !spec_.stdin_open;
  auto guest = this->agent();
  if (!guest || !guest->connected()) {
    finish(exit_without_guest(EndCause::kSandboxCrashed, "the sandbox's guest agent is gone", 0));
    return;
  }
  std::weak_ptr<Exec> self = weak_from_this();
  agent_id_ = guest->start_exec(
      request, {
                   .on_started = [self](std::uint32_t pid) { if (auto e = self.lock()) e->on_started(pid); },
                   .on_output = [self](protocol::Stream s, Bytes&& d) { if (auto e = self.lock()) e->on_output(s, std::move(d)); },
                   .on_stdin_credit = [self] { if (auto e = self.lock()) e->flush_stdin(); },
                   .on_exit = [self](const protocol::Exit& x) { if (auto e = self.lock()) e->on_exit(x); },
                   .on_failed = [self](const std::string& why) { if (auto e = self.lock()) e->on_failed(why); },
               });
  // A guest that never answers the start must not leave the exec "starting".
  start_timer_.expires_after(kStartDeadline);
  start_timer_.async_wait([self](const boost::system::error_code& ec) {
    auto e = self.lock();
    if (ec || !e || e->state_ != State::kStarting) return;
    ExitInfo info;
    info.reason = "start_failed";
    info.message = "the guest did not start the process within 30 s";
    info.duration_ms = e->elapsed_ms();
    e->finish(info);
  });
  arm_timeout();
}

void Exec::arm_timeout() {
  if (spec_.timeout_ms == 0) return;
  timer_.expires_after(std::chrono::milliseconds(spec_.timeout_ms));
  std::weak_ptr<Exec> self = weak_from_this();
  timer_.async_wait([self](const boost::system::error_code& ec) {
    auto e = self.lock();
    if (ec || !e || e->state_ == State::kExited) return;
    e->cause_ = EndCause::kTimeout;
    e->log_event({.kind = ExecEvent::Kind::kTimedOut, .timeout_ms = e->spec_.timeout_ms});
    if (auto guest = e->agent()) guest->signal(e->agent_id_, SIGKILL);
    // A guest that does not confirm the kill must not leave the exec hanging.
    e->timer_.expires_after(kKillGrace);
    e->timer_.async_wait([self](const boost::system::error_code& ec2) {
      auto e2 = self.lock();
      if (ec2 || !e2 || e2->state_ == State::kExited) return;
      e2->finish(exit_without_guest(EndCause::kTimeout, "the guest did not confirm the kill", e2->elapsed_ms()));
    });
  });
}

std::uint64_t Exec::elapsed_ms() const {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count());
}

void Exec::on_started(std::uint32_t pid) {
  if (state_ != State::kStarting) return;
  state_ = State::kRunning;
  start_timer_.cancel();
  pid_ = pid;
  log_event({.kind = ExecEvent::Kind::kStarted, .pid = pid});
  flush_stdin();
}

void Exec::on_output(protocol::Stream stream, Bytes&& data) {
  if (state_ == State::kExited) return;
  log_.append_output(stream, data);
  output_unacked_ += static_cast<std::uint32_t>(data.size());
  release_output_credit();
  pump();
}

// The guest may send more only while the log has room: a process whose
// output nobody reads blocks in the guest instead of losing bytes.
void Exec::release_output_credit() {
  if (output_unacked_ == 0 || log_.full()) return;
  if (auto guest = agent()) guest->ack_output(agent_id_, output_unacked_);
  output_unacked_ = 0;
}

void Exec::on_exit(const protocol::Exit& exit) {
  if (state_ == State::kExited) return;
  finish(exit_from_guest(exit, cause_, elapsed_ms()));
}

void Exec::on_failed(const std::string& reason) {
  if (state_ == State::kExited) return;
  EndCause cause = cause_ == EndCause::kNone ? EndCause::kSandboxCrashed : cause_;
  finish(exit_without_guest(cause, reason, elapsed_ms()));
}

void Exec::end(EndCause cause, const std::string& message, const std::string& sandbox_reason) {
  if (state_ == State::kExited) return;
  cause_ = cause;
  finish(exit_without_guest(cause, message, elapsed_ms(), sandbox_reason));
}

void Exec::finish(const ExitInfo& info) {
  state_ = State::kExited;
  exit_ = info;
  finished_at_ = std::chrono::steady_clock::now();
  timer_.cancel();
  start_timer_.cancel();
  stdin_closed_ = true;
  stdin_backlog_.clear();
  stdin_offset_ = 0;
  log_event({.kind = ExecEvent::Kind::kExit, .exit = info});
  // Sinks held back by this exec's stdin must not wait for it any more.
  for (auto& s : subscriptions_) {
    if (auto sink = s.sink.lock()) sink->stdin_room();
  }
  if (auto done = std::move(on_finished_)) done();
  on_event_ = nullptr;
}

void Exec::log_event(const ExecEvent& event) {
  log_.append_event(event);
  // Sandbox subscribers hear of starts and exits, not of timeouts.
  if (event.kind != ExecEvent::Kind::kTimedOut && on_event_) on_event_(log_.find(log_.last_seq()));
  pump();
}

Expected<void, Error> Exec::write_stdin(ByteSpan data, bool eof) {
  if (state_ == State::kExited) return ended(spec_.id);
  if (stdin_closed_ || stdin_eof_requested_)
    return Unexpected{Error{ErrorCode::kStdinClosed, "exec " + spec_.id + " has no open stdin"}};
  stdin_backlog_.insert(stdin_backlog_.end(), data.begin(), data.end());
  if (eof) stdin_eof_requested_ = true;
  flush_stdin();
  if (stdin_backlog() >= kStdinBacklogLimit) stdin_was_full_ = true;
  return {};
}

void Exec::flush_stdin() {
  auto guest = agent();
  if (!guest || state_ == State::kExited) return;
  // Before ExecStarted the guest has no stdin to write to yet; hold it.
  if (state_ == State::kStarting) return;
  if (stdin_offset_ < stdin_backlog_.size() || stdin_eof_requested_) {
    ByteSpan rest(stdin_backlog_.data() + stdin_offset_, stdin_backlog_.size() - stdin_offset_);
    std::size_t taken = guest->write_stdin(agent_id_, rest, stdin_eof_requested_);
    stdin_offset_ += taken;
    if (taken == rest.size() && stdin_eof_requested_) stdin_closed_ = true;
    if (stdin_offset_ == stdin_backlog_.size()) {
      stdin_backlog_.clear();
      stdin_offset_ = 0;
    } else if (stdin_offset_ > (256u << 10)) {
      stdin_backlog_.erase(stdin_backlog_.begin(), stdin_backlog_.begin() + static_cast<std::ptrdiff_t>(stdin_offset_));
      stdin_offset_ = 0;
    }
  }
  if (stdin_was_full_ && stdin_backlog() < kStdinBacklogLimit) {
    stdin_was_full_ = false;
    for (auto& s : subscriptions_) {
      if (auto sink = s.sink.lock()) sink->stdin_room();
    }
  }
}

Expected<void, Error> Exec::resize(std::uint16_t cols, std::uint16_t rows) {
  if (state_ == State::kExited) return ended(spec_.id);
  if (!spec_.pty) return Unexpected{Error{ErrorCode::kNotATty, "exec " + spec_.id + " has no terminal"}};
  if (auto guest = agent()) guest->resize(agent_id_, cols, rows);
  return {};
}

Expected<void, Error> Exec::signal(int signo) {
  if (state_ == State::kExited) return ended(spec_.id);
  if (auto guest = agent()) guest->signal(agent_id_, signo);
  return {};
}

Expected<void, Error> Exec::kill() {
  if (state_ == State::kExited) return ended(spec_.id);
  if (cause_ == EndCause::kNone) cause_ = EndCause::kKilled;
  if (auto guest = agent()) guest->signal(agent_id_, SIGKILL);
  return {};
}

Expected<void, Error> Exec::attach(const std::shared_ptr<ExecSink>& sink, std::uint64_t after_seq, bool read_only) {
  if (after_seq + 1 < log_.first_seq()) {
    Error e{ErrorCode::kLogTruncated, "the log of exec " + spec_.id + " starts at seq " + std::to_string(log_.first_seq())};
    e.first_seq = log_.first_seq();
    return Unexpected{std::move(e)};
  }
  detach(sink.get());
  subscriptions_.push_back({sink, sink.get(), std::min(after_seq, log_.last_seq()) + 1, read_only});
  pump();
  return {};
}

void Exec::detach(const ExecSink* sink) {
  std::erase_if(subscriptions_, [&](const Subscription& s) { return s.key == sink; });
  pump();
}

bool Exec::is_attached(const ExecSink* sink) const {
  return std::any_of(subscriptions_.begin(), subscriptions_.end(), [&](const Subscription& s) { return s.key == sink; });
}

Expected<void, Error> Exec::check_control(const ExecSink* sink) const {
  for (const auto& s : subscriptions_) {
    if (s.key != sink) continue;
    if (s.read_only) return Unexpected{Error{ErrorCode::kReadOnly, "attached to " + spec_.id + " read-only"}};
    return {};
  }
  Error e{ErrorCode::kNotAttached, "this connection is not attached to exec " + spec_.id};
  e.exec = spec_.id;
  return Unexpected{std::move(e)};
}

void Exec::pump() {
  std::uint64_t slowest = log_.last_seq() + 1;
  for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
    auto sink = it->sink.lock();
    if (!sink) {
      it = subscriptions_.erase(it);
      continue;
    }
    while (it->next_seq <= log_.last_seq() && sink->can_send()) {
      if (auto entry = log_.find(it->next_seq)) sink->send_entry(std::move(entry));
      ++it->next_seq;
    }
    delivered_below_ = std::max(delivered_below_, it->next_seq);
    slowest = std::min(slowest, it->next_seq);
    ++it;
  }
  if (log_.trim(std::min(slowest, delivered_below_))) release_output_credit();
}

ExecInfo Exec::info() const {
  ExecInfo info;
  info.id = spec_.id;
  info.sandbox = spec_.sandbox_id;
  info.argv = spec_.argv;
  info.pty = spec_.pty;
  info.stdin_open = spec_.stdin_open;
  info.state = state_;
  info.pid = pid_;
  info.started_at = started_wall_;
  info.first_seq = log_.first_seq();
  info.last_seq = log_.last_seq();
  info.exit = exit_;
  return info;
}

}  // namespace sandboxd::session
