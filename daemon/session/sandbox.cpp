#include "daemon/session/sandbox.hpp"

#include <boost/asio/post.hpp>
#include <algorithm>

#include <spdlog/spdlog.h>

namespace sandboxd::session {

namespace {
std::vector<std::string> default_env(const std::string& term) {
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=" + term};
}
}  // namespace

Sandbox::Sandbox(boost::asio::io_context& io, SandboxSettings settings)
    : io_(io),
      settings_(std::move(settings)),
      created_(std::chrono::system_clock::now()),
      lifetime_timer_(io),
      idle_timer_(io) {}

// Normally the machine was stopped by end(); its destructor is the last line
// of defence, so that no QEMU outlives its sandbox object.
Sandbox::~Sandbox() = default;

void Sandbox::begin(std::function<void(Sandbox&)> on_ended) {
  on_ended_ = std::move(on_ended);
  if (settings_.lifetime_s == 0) return;
  std::weak_ptr<Sandbox> self = weak_from_this();
  lifetime_timer_.expires_after(std::chrono::seconds(settings_.lifetime_s));
  lifetime_timer_.async_wait([self](const boost::system::error_code& ec) {
    auto s = self.lock();
    if (!ec && s && s->active()) s->destroy("lifetime", nullptr);
  });
}

void Sandbox::machine_arrived(Expected<vm::MachinePtr, std::string> machine, bool from_pool, net::EgressPolicy policy) {
  if (!machine) {
    if (state_ != State::kBooting) return;
    spdlog::warn("sandbox {}: the machine did not start: {}", id(), machine.error().substr(0, 500));
    end(State::kExited, "boot_failed", machine.error());
    return;
  }
  if (state_ != State::kBooting) {
    // Destroyed while it booted: the machine is not needed any more.
    (*machine)->stop([] {});
    return;
  }
  machine_ = std::move(*machine);
  from_pool_ = from_pool;
  boot_ms_ = machine_->boot_time().count() / 1000;
  std::weak_ptr<Sandbox> self = weak_from_this();
  // The network reports from inside its packet handling and must not be
  // called back: the record is queued and handled on its own turn.
  machine_->assign({settings_.id, settings_.owner, std::move(policy), [self, &io = io_](const net::FlowAudit& flow) {
                      boost::asio::post(io, [self, flow] {
                        if (auto s = self.lock()) s->on_flow(flow);
                      });
                    }});
  machine_->on_exit([self](const vm::MachineExit& exit) {
    if (auto s = self.lock()) s->on_machine_exit(exit);
  });
  set_state(State::kReady, "", "");
  arm_idle_timer();
  auto waiters = std::move(ready_waiters_);
  for (auto& w : waiters) w(shared_from_this());
}

void Sandbox::when_ready(Ready done) {
  if (state_ == State::kReady) return done(shared_from_this());
  if (state_ == State::kBooting) {
    ready_waiters_.push_back(std::move(done));
    return;
  }
  done(Unexpected{Error{ErrorCode::kUnavailable, "sandbox " + id() + " has " + std::string(to_string(state_))}});
}

void Sandbox::fail_ready_waiters(const Error& error) {
  auto waiters = std::move(ready_waiters_);
  for (auto& w : waiters) w(Unexpected{error});
}

void Sandbox::arm_idle_timer() {
  if (settings_.idle_timeout_s == 0 || !live()) return;
  idle_timer_.expires_after(std::chrono::seconds(settings_.idle_timeout_s));
  std::weak_ptr<Sandbox> self = weak_from_this();
  idle_timer_.async_wait([self](const boost::system::error_code& ec) {
    auto s = self.lock();
    if (ec || !s || !s->live()) return;
    // Running execs are activity: the sandbox is idle only when none runs.
    if (!s->running_.empty() || *s->busy_ > 0) {
      s->arm_idle_timer();
      return;
    }
    s->destroy("idle", nullptr);
  });
}

void Sandbox::touch() { arm_idle_timer(); }

std::shared_ptr<void> Sandbox::busy_token() {
  touch();
  ++*busy_;
  std::weak_ptr<unsigned> count = busy_;
  return std::shared_ptr<void>(nullptr, [count](void*) {
    if (auto c = count.lock()) --*c;
  });
}

Expected<std::shared_ptr<Exec>, Error> Sandbox::start_exec(const ExecStartParams& params, std::string exec_id) {
  if (!live()) {
    Error e{ErrorCode::kNotReady, "sandbox " + id() + " is " + std::string(to_string(state_))};
    e.state = to_string(state_);
    return Unexpected{std::move(e)};
  }
  if (running_.size() >= kMaxRunningExecs)
    return Unexpected{Error::limit_exceeded("max_execs_per_sandbox", "sandbox " + id() + " already runs 64 execs")};
  touch();
  // A terminal is for typing into: its stdin is always open.
  bool stdin_open = params.stdin_open || params.pty.has_value();
  ExecSpec spec{exec_id, owner(), id(), params.argv, params.pty.has_value(), stdin_open, params.timeout_ms,
                settings_.exec_log_bytes, settings_.log_format};
  auto exec = std::make_shared<Exec>(io_, std::move(spec));
  agent::ExecRequest request;
  request.argv = params.argv;
  request.env = default_env(params.pty ? params.pty->term : "xterm-256color");
  request.env.insert(request.env.end(), settings_.env.begin(), settings_.env.end());
  request.env.insert(request.env.end(), params.env.begin(), params.env.end());
  request.cwd = params.cwd;
  request.user = params.user;
  request.stdin_open = stdin_open;
  if (params.pty) request.pty = protocol::Terminal{params.pty->cols, params.pty->rows};
  running_[exec_id] = exec;
  std::weak_ptr<Sandbox> self = weak_from_this();
  exec->start(
      machine_->agent(), std::move(request),
      [self, exec_id](SharedEntry entry) {
        auto s = self.lock();
        if (!s) return;
        auto subscribers = s->subscribers_;
        for (auto& [weak, key] : subscribers) {
          if (auto sink = weak.lock()) sink->send_exec_event(exec_id, entry);
        }
      },
      [self, exec_id] {
        if (auto s = self.lock()) {
          s->running_.erase(exec_id);
          s->arm_idle_timer();
        }
      });
  return exec;
}

void Sandbox::destroy(const std::string& reason, std::function<void()> done) {
  if (done) destroy_waiters_.push_back(std::move(done));
  if (active()) return end(State::kExited, reason, "");
  if (state_ == State::kExited || state_ == State::kCrashed) {
    auto waiters = std::move(destroy_waiters_);
    for (auto& w : waiters) w();
  }
  // Stopping: the waiter runs once it has ended.
}

void Sandbox::on_machine_exit(const vm::MachineExit& exit) {
  if (state_ != State::kReady) return;  // an end we caused
  bool oom = exit.report.find("Out of memory") != std::string::npos || exit.report.find("oom-kill") != std::string::npos;
  std::string detail = exit.report + (oom ? " (the guest kernel's OOM killer ran)" : "");
  std::string reason = exit.kind == vm::MachineExit::Kind::kGuestLost ? "guest_lost" : "qemu_exited";
  spdlog::warn("sandbox {} crashed ({}): {}", id(), reason, detail);
  end(State::kCrashed, reason, detail);
}

void Sandbox::end(State final_state, const std::string& reason, const std::string& detail) {
  if (!active()) return;
  const bool was_ready = live();
  final_state_ = final_state;
  end_reason_ = reason;
  end_detail_ = detail;
  lifetime_timer_.cancel();
  idle_timer_.cancel();
  // A crash is reported once, when it is over; a requested end says first
  // that it has begun.
  if (final_state == State::kCrashed) state_ = State::kCrashed;
  else if (was_ready) set_state(State::kStopping, reason, "");
  else state_ = State::kStopping;

  const bool crashed = final_state == State::kCrashed;
  std::string message = crashed ? "the sandbox crashed: " + detail
                                : "sandbox " + id() + " was destroyed (" + reason + ")";
  auto running = running_;  // ending an exec removes it from running_
  for (auto& [exec_id, exec] : running)
    exec->end(crashed ? EndCause::kSandboxCrashed : EndCause::kSandboxDestroyed, message, reason);
  if (reason == "boot_failed") {
    fail_ready_waiters({ErrorCode::kUnavailable, "the sandbox did not start: " + detail});
  } else {
    fail_ready_waiters({reason == "shutdown" ? ErrorCode::kShuttingDown : ErrorCode::kUnavailable,
                        "sandbox " + id() + " ended before it was ready (" + reason + ")"});
  }
  if (!machine_) return ended();
  auto self = shared_from_this();
  machine_->stop([self] { self->ended(); });
}

void Sandbox::ended() {
  machine_.reset();
  set_state(final_state_, end_reason_, final_state_ == State::kCrashed ? end_detail_ : "");
  auto waiters = std::move(destroy_waiters_);
  for (auto& w : waiters) w();
  if (auto done = std::move(on_ended_)) done(*this);
}

void Sandbox::set_state(State state, const std::string& reason, const std::string& detail) {
  state_ = state;
  broadcast_state({id(), state, reason, detail});
}

void Sandbox::subscribe(const std::shared_ptr<SandboxSink>& sink) {
  unsubscribe(sink.get());
  subscribers_.emplace_back(sink, sink.get());
}

void Sandbox::unsubscribe(const SandboxSink* sink) {
  std::erase_if(subscribers_, [&](const auto& s) { return s.second == sink; });
}

void Sandbox::on_flow(const net::FlowAudit& flow) {
  if (subscribers_.empty()) return;
  auto now = std::chrono::steady_clock::now();
  net_event_tokens_ = std::min(kNetEventBurst, net_event_tokens_ + std::chrono::duration<double>(now - net_event_refill_).count() *
                                                                       kNetEventsPerSecond);
  net_event_refill_ = now;
  if (net_event_tokens_ < 1.0) {
    ++net_events_unreported_;
    return;
  }
  net_event_tokens_ -= 1.0;
  NetFlowEvent event{id(), flow, net_events_unreported_};
  net_events_unreported_ = 0;
  auto subscribers = subscribers_;
  for (auto& [weak, key] : subscribers) {
    if (auto sink = weak.lock()) sink->send_net_flow(event);
  }
}

void Sandbox::broadcast_state(const SandboxStateEvent& event) {
  auto subscribers = subscribers_;
  for (auto& [weak, key] : subscribers) {
    if (auto sink = weak.lock()) sink->send_sandbox_state(event);
  }
}

Expected<void, Error> Sandbox::set_network(NetworkChoice choice, net::EgressPolicy policy) {
  if (!live() || !machine_)
    return Unexpected{Error{ErrorCode::kNotReady, "sandbox " + id() + " is " + std::string(to_string(state_))}};
  machine_->set_egress_policy(std::move(policy));
  settings_.network = std::move(choice);
  spdlog::info("sandbox {}: network replaced ({}, {} rules)", id(), settings_.network.label(),
               settings_.network.rules.rules.size());
  return {};
}

SandboxInfo Sandbox::info() const {
  SandboxInfo info;
  info.id = id();
  info.state = state_;
  info.image = settings_.image;
  info.cpus = settings_.cpus;
  info.memory_mib = settings_.memory_mib;
  info.labels = settings_.labels;
  info.key = settings_.key;
  info.created_at = created_;
  if (settings_.lifetime_s > 0) info.expires_at = created_ + std::chrono::seconds(settings_.lifetime_s);
  info.idle_timeout_s = settings_.idle_timeout_s;
  info.network = settings_.network;
  info.from_pool = from_pool_;
  info.boot_ms = boot_ms_;
  info.execs_running = running_.size();
  info.disk_mib = settings_.disk_mib;
  info.disk_backing = settings_.disk_backing;
  info.mounts = settings_.mounts;
  return info;
}

}  // namespace sandboxd::session
