#include "daemon/session/sandbox.hpp"

#include <boost/json/serialize.hpp>

#include <spdlog/spdlog.h>

#include "daemon/session/unix_time.hpp"

namespace sandboxd::session {
namespace json = boost::json;
using api::ApiError;
using api::ErrorCode;

namespace {
std::vector<std::string> default_env(const std::string& term) {
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=" + term};
}
}  // namespace

const char* to_string(Sandbox::State state) {
  switch (state) {
    case Sandbox::State::kReady: return "ready";
    case Sandbox::State::kStopping: return "stopping";
    case Sandbox::State::kExited: return "exited";
    case Sandbox::State::kCrashed: return "crashed";
  }
  return "exited";
}

Sandbox::Sandbox(boost::asio::io_context& io, SandboxSettings settings, vm::WarmVm machine, bool from_pool)
    : io_(io),
      settings_(std::move(settings)),
      machine_(std::move(machine)),
      from_pool_(from_pool),
      created_(std::chrono::system_clock::now()),
      lifetime_timer_(io),
      idle_timer_(io) {
  if (machine_.vm) boot_ms_ = machine_.vm->boot_time().count() / 1000;
}

Sandbox::~Sandbox() {
  // Normally released by destroy() or a crash; this is the last line of
  // defence so that no QEMU outlives its sandbox object.
  if (machine_.vm) machine_.release(nullptr);
}

void Sandbox::begin(std::function<void(Sandbox&)> on_ended) {
  on_ended_ = std::move(on_ended);
  std::weak_ptr<Sandbox> self = weak_from_this();
  machine_.vm->on_exit([self](const std::string& report) {
    if (auto s = self.lock()) s->on_vm_exit(report);
  });
  if (settings_.lifetime_s > 0) {
    lifetime_timer_.expires_after(std::chrono::seconds(settings_.lifetime_s));
    lifetime_timer_.async_wait([self](const boost::system::error_code& ec) {
      auto s = self.lock();
      if (!ec && s && s->live()) s->destroy("lifetime", nullptr);
    });
  }
  arm_idle_timer();
}

void Sandbox::arm_idle_timer() {
  if (settings_.idle_timeout_s == 0 || !live()) return;
  idle_timer_.expires_after(std::chrono::seconds(settings_.idle_timeout_s));
  std::weak_ptr<Sandbox> self = weak_from_this();
  idle_timer_.async_wait([self](const boost::system::error_code& ec) {
    auto s = self.lock();
    if (ec || !s || !s->live()) return;
    // Running execs are activity: the sandbox is idle only when none runs.
    if (!s->running_.empty()) {
      s->arm_idle_timer();
      return;
    }
    s->destroy("idle", nullptr);
  });
}

void Sandbox::touch() { arm_idle_timer(); }

Expected<std::shared_ptr<Exec>, ApiError> Sandbox::start_exec(const api::ExecStartParams& params, std::string exec_id) {
  if (!live()) {
    ApiError e{ErrorCode::kNotReady, "sandbox " + id() + " is " + to_string(state_), {}};
    e.details["state"] = to_string(state_);
    return Unexpected{std::move(e)};
  }
  if (running_.size() >= kMaxRunningExecs)
    return Unexpected{ApiError::limit("max_execs_per_sandbox", "sandbox " + id() + " already runs 64 execs")};
  touch();
  // A terminal is for typing into: its stdin is always open.
  bool stdin_open = params.stdin_open || params.pty.has_value();
  ExecSpec spec{exec_id, owner(), id(), params.argv, params.pty.has_value(), stdin_open, params.timeout_ms,
                settings_.exec_log_bytes};
  auto exec = std::make_shared<Exec>(io_, std::move(spec));
  agent::ExecRequest request;
  request.argv = params.argv;
  request.env = default_env(params.pty ? params.pty->term : "xterm-256color");
  request.env.insert(request.env.end(), settings_.env.begin(), settings_.env.end());
  request.env.insert(request.env.end(), params.env.begin(), params.env.end());
  request.cwd = params.cwd;
  request.stdin_open = stdin_open;
  if (params.pty) request.pty = protocol::Terminal{params.pty->cols, params.pty->rows};
  running_[exec_id] = exec;
  std::weak_ptr<Sandbox> self = weak_from_this();
  exec->start(
      machine_.vm->agent_handle(), std::move(request),
      [self](std::shared_ptr<const std::string> event) {
        if (auto s = self.lock()) s->broadcast(std::move(event));
      },
      [self, exec_id] {
        if (auto s = self.lock()) {
          s->running_.erase(exec_id);
          s->arm_idle_timer();
        }
      });
  return exec;
}

void Sandbox::end_execs(EndCause cause, const std::string& message) {
  auto running = running_;  // ending an exec removes it from running_
  for (auto& [id, exec] : running) exec->end(cause, message);
}

void Sandbox::destroy(const std::string& reason, std::function<void()> done) {
  if (done) destroy_waiters_.push_back(std::move(done));
  if (state_ != State::kReady) {
    if (state_ == State::kExited || state_ == State::kCrashed) {
      auto waiters = std::move(destroy_waiters_);
      for (auto& w : waiters) w();
    }
    return;
  }
  set_state(State::kStopping, reason, "");
  end_execs(EndCause::kSandboxDestroyed, "sandbox " + id() + " was destroyed (" + reason + ")");
  std::weak_ptr<Sandbox> weak = weak_from_this();
  auto self = shared_from_this();
  release([self, reason] {
    self->set_state(State::kExited, reason, "");
    auto waiters = std::move(self->destroy_waiters_);
    for (auto& w : waiters) w();
    if (auto ended = std::move(self->on_ended_)) ended(*self);
  });
}

void Sandbox::on_vm_exit(const std::string& report) {
  if (state_ != State::kReady) return;  // an exit we caused
  bool oom = report.find("Out of memory") != std::string::npos || report.find("oom-kill") != std::string::npos;
  std::string detail = report + (oom ? " (the guest kernel's OOM killer ran)" : "");
  spdlog::warn("sandbox {} crashed: {}", id(), detail);
  state_ = State::kCrashed;
  end_execs(EndCause::kSandboxCrashed, "the sandbox crashed: " + detail);
  auto self = shared_from_this();
  release([self, detail] {
    self->set_state(State::kCrashed, "qemu_exited", detail);
    auto waiters = std::move(self->destroy_waiters_);
    for (auto& w : waiters) w();
    if (auto ended = std::move(self->on_ended_)) ended(*self);
  });
}

void Sandbox::release(std::function<void()> done) {
  lifetime_timer_.cancel();
  idle_timer_.cancel();
  machine_.release(std::move(done));
}

void Sandbox::set_state(State state, const std::string& reason, const std::string& detail) {
  state_ = state;
  json::object event{{"type", "event"}, {"event", "sandbox.state"}, {"sandbox", id()}, {"state", to_string(state)}};
  if (!reason.empty()) event["reason"] = reason;
  if (!detail.empty()) event["detail"] = detail;
  broadcast(std::make_shared<const std::string>(json::serialize(event)));
}

void Sandbox::subscribe(const std::shared_ptr<SandboxSink>& sink) {
  unsubscribe(sink.get());
  subscribers_.emplace_back(sink, sink.get());
}

void Sandbox::unsubscribe(const SandboxSink* sink) {
  std::erase_if(subscribers_, [&](const auto& s) { return s.second == sink; });
}

void Sandbox::broadcast(std::shared_ptr<const std::string> event) {
  auto subscribers = subscribers_;
  for (auto& [weak, key] : subscribers) {
    if (auto sink = weak.lock()) sink->send_sandbox_event(event);
  }
}

json::object Sandbox::info() const {
  json::object labels;
  for (const auto& [k, v] : settings_.labels) labels[k] = v;
  json::object o{{"id", id()}, {"state", to_string(state_)}, {"image", settings_.image}, {"cpus", settings_.cpus},
                 {"memory_mib", settings_.memory_mib}, {"labels", std::move(labels)},
                 {"created_at", unix_ms(created_)}, {"idle_timeout_s", settings_.idle_timeout_s},
                 {"egress", settings_.egress}, {"from_pool", from_pool_}, {"execs_running", running_.size()}};
  if (settings_.lifetime_s > 0) o["expires_at"] = unix_ms(created_ + std::chrono::seconds(settings_.lifetime_s));
  else o["expires_at"] = nullptr;
  o["boot_ms"] = boot_ms_;
  return o;
}

}  // namespace sandboxd::session
