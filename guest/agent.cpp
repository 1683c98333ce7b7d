#include "guest/agent.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <system_error>
#include <utility>
#include <vector>

#include "guest/init_system.hpp"

#ifndef SANDBOX_AGENT_VERSION
#define SANDBOX_AGENT_VERSION "dev"
#endif

namespace sandboxd::guest {
using namespace sandboxd::protocol;

namespace {
// epoll tags: the port, the signalfd, or (exec id << 2 | stream) for pipes,
// where stream 0/1 are stdout/stderr and 2 is stdin.
constexpr std::uint64_t kTagPort = ~0ull;
constexpr std::uint64_t kTagSignal = ~0ull - 1;
constexpr std::size_t kFinishedRemembered = 1024;
std::uint64_t pipe_tag(std::uint32_t id, int stream) {
  return (static_cast<std::uint64_t>(id) << 2) | static_cast<std::uint64_t>(stream);
}
}  // namespace

Agent::Agent(int port_fd, Mode mode, std::shared_ptr<KeptProcess> kept)
    : port_fd_(port_fd), mode_(mode), kept_(std::move(kept)) {
  // Every read and write in the loop expects EAGAIN rather than blocking, and
  // no process may inherit the port.
  ::fcntl(port_fd_, F_SETFL, ::fcntl(port_fd_, F_GETFL) | O_NONBLOCK);
  ::fcntl(port_fd_, F_SETFD, FD_CLOEXEC);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  signal_fd_ = ::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  loop_.watch(signal_fd_, EPOLLIN, kTagSignal);
}

Agent::~Agent() {
  loop_.unwatch(signal_fd_);
  ::close(signal_fd_);
  loop_.unwatch(port_fd_);
  ::close(port_fd_);
}

void Agent::run() {
  send(Hello{SANDBOX_AGENT_VERSION, {"exec", "stdin", "signal", "flow-control", "ping", "pty", "file"}});
  // A child may have ended before the signalfd existed.
  on_sigchld();
  std::array<epoll_event, 64> events;
  while (!done_) {
    int timeout = -1;
    try {
      flush_outbound();
      drain_reaped();
      if (done_) break;
      restart_kept();
      update_interest();
      if (port_down_) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(port_retry_at_ - std::chrono::steady_clock::now());
        timeout = static_cast<int>(std::max<std::int64_t>(0, left.count()));
      }
      if (int kept = kept_timeout_ms(); kept >= 0) timeout = timeout < 0 ? kept : std::min(timeout, kept);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sandbox-agent: %s\n", e.what());
    }
    int n = loop_.wait(events, timeout);
    if (port_down_ && std::chrono::steady_clock::now() >= port_retry_at_) port_down_ = false;
    for (int i = 0; i < n && !done_; ++i) {
      const epoll_event& ev = events[static_cast<std::size_t>(i)];
      // One request or process going wrong (out of memory, out of fds) must
      // not take the others down with it.
      try {
        dispatch(ev.data.u64, ev.events);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "sandbox-agent: %s\n", e.what());
        send(Error{0, ErrorCode::kInternal, e.what()});
      }
    }
  }
  flush_outbound();
}

void Agent::dispatch(std::uint64_t tag, std::uint32_t what) {
  if (tag == kTagPort) {
    if (what & EPOLLOUT) flush_outbound();
    if (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_port_readable();
    return;
  }
  if (tag == kTagSignal) {
    on_sigchld();
    return;
  }
  auto id = static_cast<std::uint32_t>(tag >> 2);
  auto it = execs_.find(id);
  if (it == execs_.end()) return;
  int stream = static_cast<int>(tag & 3);
  if (stream == 2) on_stdin_writable(*it->second);
  else on_output_readable(*it->second, stream);
  finish_if_done(id);
}

bool Agent::may_read_output(const ExecSession& e) const {
  return outbound_.size() <= kOutboundCap && e.output_credit() > 0;
}

// Restates, after every round of events, which fds the loop waits on.
void Agent::update_interest() {
  if (port_down_) {
    // A port whose host end is gone reports EPOLLHUP whatever it is watched
    // for, so it leaves the set until the retry time.
    loop_.unwatch(port_fd_);
  } else {
    std::uint32_t port_events = outbound_.size() <= kOutboundHardCap ? EPOLLIN : 0u;
    if (!outbound_.empty()) port_events |= EPOLLOUT;
    loop_.watch(port_fd_, port_events, kTagPort);
  }
  for (auto& [id, e] : execs_) {
    bool may_read = may_read_output(*e);
    for (int s = 0; s < 2; ++s) {
      if (e->output_fd(s) >= 0) loop_.watch(e->output_fd(s), may_read ? EPOLLIN : 0u, pipe_tag(id, s));
    }
    if (e->stdin_fd() >= 0) loop_.watch(e->stdin_fd(), e->stdin_pending() ? EPOLLOUT : 0u, pipe_tag(id, 2));
  }
}

void Agent::flush_outbound() {
  if (port_down_ || outbound_.empty()) return;
  if (outbound_.flush(port_fd_) == OutboundQueue::Flush::kFailed) port_down();
}

// The host end went away: under test that is the end; in the guest the host
// may come back, so the port is tried again a little later.
void Agent::port_down() {
  if (mode_ == Mode::kServeFd) {
    kill_all_execs();
    done_ = true;
    return;
  }
  port_down_ = true;
  port_retry_at_ = std::chrono::steady_clock::now() + kPortRetry;
}

void Agent::on_port_readable() {
  std::array<std::byte, 65536> buf;
  for (int rounds = 0; rounds < 16 && !done_ && !port_down_; ++rounds) {
    ssize_t n = ::read(port_fd_, buf.data(), buf.size());
    if (n > 0) {
      decoder_.feed(ByteSpan(buf.data(), static_cast<std::size_t>(n)));
      while (auto r = decoder_.next()) {
        if (auto* m = std::get_if<Message>(&*r)) {
          on_message(std::move(*m));
        } else {
          const FrameError& fe = std::get<FrameError>(*r);
          send(Error{0, fe.code, fe.reason});
        }
        if (done_) return;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    port_down();  // end of stream, or an error
    return;
  }
}

void Agent::on_message(Message&& m) {
  std::visit(
      [&](auto&& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, ExecStart>) {
          on_exec_start(msg);
        } else if constexpr (std::is_same_v<T, OutputAck>) {
          on_output_ack(msg);
        } else if constexpr (std::is_same_v<T, Stdin>) {
          on_stdin(msg);
        } else if constexpr (std::is_same_v<T, Signal>) {
          on_signal(msg);
        } else if constexpr (std::is_same_v<T, Resize>) {
          on_resize(msg);
        } else if constexpr (std::is_same_v<T, Ping>) {
          send(Pong{msg.token});
        } else if constexpr (std::is_same_v<T, Shutdown>) {
          shutdown();
        } else {
          send(Error{0, ErrorCode::kInvalidRequest,
                     std::string("the agent does not accept ") + to_string(type_of(Message{msg}))});
        }
      },
      std::move(m));
}

void Agent::on_exec_start(const ExecStart& m) {
  if (execs_.count(m.id)) {
    send(Error{m.id, ErrorCode::kDuplicateExec, "an exec with this id is running"});
    return;
  }
  if (m.id == 0 || m.argv.empty() || m.argv[0].empty()) {
    send(Error{m.id, ErrorCode::kInvalidRequest, m.id == 0 ? "exec id 0 is reserved" : "argv is empty"});
    return;
  }
  if (execs_.size() >= kMaxExecs) {
    send(Error{m.id, ErrorCode::kTooManyExecs, "too many execs running"});
    return;
  }
  auto session = std::make_unique<ExecSession>(m.id);
  auto result = session->start(m);
  if (!result.started) {
    send(result.failure);
    return;
  }
  send(ExecStarted{m.id, static_cast<std::uint32_t>(session->pid())});
  exec_by_pid_[session->pid()] = m.id;
  execs_[m.id] = std::move(session);
  // The id may be reused now; an old ack for it would count against the new exec.
  if (finished_.erase(m.id)) std::erase(finished_order_, m.id);
}

void Agent::on_output_ack(const OutputAck& m) {
  auto it = execs_.find(m.id);
  if (it == execs_.end()) {
    // Acks may trail the exit; an ack for an id never seen is a host error.
    if (!finished_.count(m.id))
      send(Error{m.id, ErrorCode::kUnknownExec, "output acknowledged for an exec that is not running"});
    return;
  }
  if (!it->second->output_acked(m.bytes))
    send(Error{m.id, ErrorCode::kFlowControl, "output acknowledged beyond what was sent"});
}

void Agent::on_stdin(const Stdin& m) {
  auto it = execs_.find(m.id);
  if (it == execs_.end()) {
    send(Error{m.id, ErrorCode::kUnknownExec, "stdin for an exec that is not running"});
    return;
  }
  ExecSession& e = *it->second;
  auto queued = e.queue_stdin(m.data, m.eof);
  if (queued.over_window > 0) send(Error{m.id, ErrorCode::kFlowControl, "stdin beyond the window was dropped"});
  if (queued.discarded > 0) send(StdinAck{m.id, queued.discarded});
  on_stdin_writable(e);
}

void Agent::on_signal(const Signal& m) {
  auto it = execs_.find(m.id);
  if (it == execs_.end()) {
    send(Error{m.id, ErrorCode::kUnknownExec, "signal for an exec that is not running"});
    return;
  }
  if (m.signo < 1 || m.signo > 64) {
    send(Error{m.id, ErrorCode::kInvalidRequest, "no such signal"});
    return;
  }
  it->second->signal(m.signo);
}

void Agent::on_resize(const Resize& m) {
  auto it = execs_.find(m.id);
  if (it == execs_.end()) {
    send(Error{m.id, ErrorCode::kUnknownExec, "resize for an exec that is not running"});
    return;
  }
  if (!it->second->resize(m.size.cols, m.size.rows))
    send(Error{m.id, ErrorCode::kInvalidRequest, "the exec has no terminal to resize"});
}

void Agent::on_output_readable(ExecSession& e, int stream) {
  int fd = e.output_fd(stream);
  if (fd < 0) return;
  std::array<std::byte, kMaxChunk> buf;
  // A few chunks per wakeup keeps one chatty exec from starving the others.
  for (int rounds = 0; rounds < 4; ++rounds) {
    if (!may_read_output(e)) return;
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(e.output_credit(), buf.size()));
    want = std::min(want, e.output_budget(stream));
    ssize_t n = want == 0 ? 0 : ::read(fd, buf.data(), want);
    if (n > 0) {
      e.output_sent(static_cast<std::size_t>(n));
      e.output_read(stream, static_cast<std::size_t>(n));
      send(Output{e.id(), stream == 0 ? Stream::kStdout : Stream::kStderr, Bytes(buf.begin(), buf.begin() + n)});
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // Empty after the process is gone: only a background child could still
    // write, and it does not keep the exec open.
    if (n < 0 && errno == EAGAIN && !e.reaped()) return;
    // End of file, empty or read out after the reap, or an error; a terminal's
    // master says EIO where a pipe says end of file, once no process has the
    // slave open any more.
    loop_.unwatch(fd);
    e.close_output(stream);
    return;
  }
}

void Agent::on_stdin_writable(ExecSession& e) {
  std::uint32_t written = e.flush_stdin();
  if (e.stdin_fd() >= 0 && e.stdin_finished()) {
    loop_.unwatch(e.stdin_fd());
    written += e.close_stdin();
  }
  if (written > 0) send(StdinAck{e.id(), written});
}

void Agent::on_sigchld() {
  signalfd_siginfo info;
  while (::read(signal_fd_, &info, sizeof info) > 0) {
  }
  // Every child, including orphans reparented to PID 1, is reaped here.
  for (;;) {
    int status = 0;
    struct rusage usage {};
    pid_t pid = ::wait4(-1, &status, WNOHANG, &usage);
    if (pid <= 0) break;
    if (kept_ && pid == kept_->pid) {
      kept_->pid = -1;
      kept_->finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      kept_->restart_at = std::chrono::steady_clock::now() + KeptProcess::kRestartDelay;
      if (!kept_->finished) {
        bool signalled = WIFSIGNALED(status);
        std::fprintf(stderr, "sandbox-agent: %s ended (%s %d); starting it again\n", kept_->name,
                     signalled ? "signal" : "status", signalled ? WTERMSIG(status) : WEXITSTATUS(status));
      }
      continue;
    }
    auto it = exec_by_pid_.find(pid);
    if (it == exec_by_pid_.end()) continue;
    std::uint32_t id = it->second;
    exec_by_pid_.erase(it);
    auto e = execs_.find(id);
    if (e == execs_.end()) continue;
    ExecSession& session = *e->second;
    int stdin_fd = session.stdin_fd();
    if (stdin_fd >= 0) loop_.unwatch(stdin_fd);
    std::uint32_t dropped = session.set_reaped(status, usage);
    if (dropped > 0) send(StdinAck{id, dropped});
  }
  // drain_reaped() reads what the pipes still hold before the loop waits.
}

// Starts the kept process again once its delay is over.
void Agent::restart_kept() {
  if (!kept_ || kept_->pid >= 0 || kept_->finished) return;
  auto now = std::chrono::steady_clock::now();
  if (now < kept_->restart_at) return;
  kept_->pid = kept_->start();
  if (kept_->pid < 0) kept_->restart_at = now + KeptProcess::kRestartDelay;
}

// How long the loop may wait before restart_kept() has something to do; -1: no limit.
int Agent::kept_timeout_ms() const {
  if (!kept_ || kept_->pid >= 0 || kept_->finished) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(kept_->restart_at - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

// For each reaped exec with open pipes that may be read now: read them, so a
// pipe that is empty but held open by a background child is closed even though
// it will never become readable.
void Agent::drain_reaped() {
  std::vector<std::uint32_t> ready;
  for (auto& [id, e] : execs_)
    if (e->reaped() && may_read_output(*e)) ready.push_back(id);
  for (std::uint32_t id : ready) {
    ExecSession& e = *execs_.at(id);
    for (int s = 0; s < 2; ++s) on_output_readable(e, s);
    finish_if_done(id);
  }
}

void Agent::finish_if_done(std::uint32_t id) {
  auto it = execs_.find(id);
  if (it == execs_.end() || !it->second->reaped() || !it->second->outputs_closed()) return;
  send(it->second->exit_message());
  execs_.erase(it);
  finished_.insert(id);
  finished_order_.push_back(id);
  if (finished_order_.size() > kFinishedRemembered) {
    finished_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

void Agent::kill_all_execs() {
  for (auto& [id, e] : execs_) e->signal(SIGKILL);
}

void Agent::shutdown() {
  if (mode_ == Mode::kServeFd) {
    kill_all_execs();
    done_ = true;
    return;
  }
  std::fprintf(stderr, "sandbox-agent: powering off\n");
  power_off();
}

}  // namespace sandboxd::guest
