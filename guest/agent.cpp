#include "guest/agent.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "guest/init_system.hpp"
#include "protocol/codec.hpp"

#ifndef SANDBOX_AGENT_VERSION
#define SANDBOX_AGENT_VERSION "dev"
#endif

namespace sandboxd::guest {
using namespace sandboxd::protocol;

namespace {
// epoll tags: the port, the signalfd, or (exec id << 2 | stream) for pipes,
// where stream 0/1 are stdout/stderr and 2 is stdin.
constexpr std::uint32_t kIn = EPOLLIN;
constexpr std::uint32_t kOut = EPOLLOUT;
constexpr std::uint64_t kTagPort = ~0ull;
constexpr std::uint64_t kTagSignal = ~0ull - 1;
std::uint64_t pipe_tag(std::uint32_t id, int stream) {
  return (static_cast<std::uint64_t>(id) << 2) | static_cast<std::uint64_t>(stream);
}
}  // namespace

Agent::Agent(int port_fd, Mode mode) : port_fd_(port_fd), mode_(mode) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  // Every read and write in the loop expects EAGAIN rather than blocking.
  ::fcntl(port_fd_, F_SETFL, ::fcntl(port_fd_, F_GETFL) | O_NONBLOCK);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  signal_fd_ = ::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
  watch(signal_fd_, EPOLLIN, kTagSignal);
  watch(port_fd_, EPOLLIN, kTagPort);
}

Agent::~Agent() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void Agent::watch(int fd, std::uint32_t events, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  auto it = watched_.find(fd);
  if (it == watched_.end()) {
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0) watched_[fd] = events;
  } else if (it->second != events) {
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0) it->second = events;
  }
}

void Agent::unwatch(int fd) {
  if (watched_.erase(fd)) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void Agent::send(const Message& m) { encode(m, outbound_); }

void Agent::run() {
  send(Hello{SANDBOX_AGENT_VERSION, {"exec", "stdin", "signal", "flow-control", "ping"}});
  std::array<epoll_event, 64> events;
  while (!done_) {
    on_port_writable();
    update_interest();
    int timeout = port_hung_up_ ? 50 : -1;
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
    }
    if (n == 0 && port_hung_up_) port_hung_up_ = false;  // try the port again
    for (int i = 0; i < n && !done_; ++i) {
      std::uint64_t tag = events[static_cast<std::size_t>(i)].data.u64;
      std::uint32_t what = events[static_cast<std::size_t>(i)].events;
      if (tag == kTagPort) {
        if (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_port_readable();
        if (what & EPOLLOUT) on_port_writable();
      } else if (tag == kTagSignal) {
        on_sigchld();
      } else {
        auto it = execs_.find(static_cast<std::uint32_t>(tag >> 2));
        if (it == execs_.end()) continue;
        int stream = static_cast<int>(tag & 3);
        if (stream == 2) on_stdin_writable(*it->second);
        else on_output_readable(*it->second, stream);
        finish_if_done(static_cast<std::uint32_t>(tag >> 2));
      }
    }
  }
}

// Decides, after every round of events, which fds the loop waits on.
void Agent::update_interest() {
  bool queue_full = outbound_.size() - outbound_off_ > kOutboundCap;
  std::uint32_t port_events = port_hung_up_ ? 0u : kIn;
  if (outbound_.size() > outbound_off_ && !port_hung_up_) port_events |= EPOLLOUT;
  watch(port_fd_, port_events, kTagPort);
  for (auto& [id, e] : execs_) {
    bool may_read = !queue_full && e->output_credit() > 0;
    for (int s = 0; s < 2; ++s) {
      if (e->output_fd(s) >= 0) watch(e->output_fd(s), may_read ? kIn : 0u, pipe_tag(id, s));
    }
    if (e->stdin_fd() >= 0) watch(e->stdin_fd(), e->stdin_pending() ? kOut : 0u, pipe_tag(id, 2));
  }
}

void Agent::on_port_readable() {
  std::array<std::byte, 65536> buf;
  for (int rounds = 0; rounds < 16; ++rounds) {
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
    // End of stream: under test the host is gone; in the guest the host side
    // is not connected right now, so wait and try again.
    if (mode_ == Mode::kServeFd) {
      kill_all_execs();
      done_ = true;
      return;
    }
    port_hung_up_ = true;
    return;
  }
}

void Agent::on_port_writable() {
  while (outbound_off_ < outbound_.size() && !port_hung_up_) {
    ssize_t n = ::write(port_fd_, outbound_.data() + outbound_off_, outbound_.size() - outbound_off_);
    if (n > 0) {
      outbound_off_ += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      if (mode_ == Mode::kServeFd) {
        kill_all_execs();
        done_ = true;
      } else {
        port_hung_up_ = true;
      }
      break;
    }
  }
  if (outbound_off_ == outbound_.size()) {
    outbound_.clear();
    outbound_off_ = 0;
  } else if (outbound_off_ > (1u << 20) && outbound_off_ > outbound_.size() / 2) {
    outbound_.erase(outbound_.begin(), outbound_.begin() + static_cast<std::ptrdiff_t>(outbound_off_));
    outbound_off_ = 0;
  }
}

void Agent::on_message(Message&& m) {
  std::visit(
      [&](auto&& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, ExecStart>) {
          on_exec_start(msg);
        } else if constexpr (std::is_same_v<T, OutputAck>) {
          auto it = execs_.find(msg.id);
          if (it == execs_.end()) return;  // acks may trail an exit
          if (!it->second->output_acked(msg.bytes))
            send(Error{msg.id, ErrorCode::kFlowControl, "output acknowledged beyond what was sent"});
        } else if constexpr (std::is_same_v<T, Stdin>) {
          auto it = execs_.find(msg.id);
          if (it == execs_.end()) {
            send(Error{msg.id, ErrorCode::kUnknownExec, "stdin for an exec that is not running"});
            return;
          }
          std::size_t dropped = it->second->queue_stdin(msg.data, msg.eof);
          if (dropped > 0) send(Error{msg.id, ErrorCode::kFlowControl, "stdin beyond the window was dropped"});
          on_stdin_writable(*it->second);
        } else if constexpr (std::is_same_v<T, Signal>) {
          auto it = execs_.find(msg.id);
          if (it == execs_.end()) {
            send(Error{msg.id, ErrorCode::kUnknownExec, "signal for an exec that is not running"});
            return;
          }
          it->second->signal(msg.signo);
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
}

void Agent::on_output_readable(ExecSession& e, int stream) {
  int fd = e.output_fd(stream);
  if (fd < 0) return;
  std::array<std::byte, kMaxChunk> buf;
  // A few chunks per wakeup keeps one chatty exec from starving the others.
  for (int rounds = 0; rounds < 4; ++rounds) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(e.output_credit(), buf.size()));
    if (want == 0 || outbound_.size() - outbound_off_ > kOutboundCap) return;
    ssize_t n = ::read(fd, buf.data(), want);
    if (n > 0) {
      Output out{e.id(), stream == 0 ? Stream::kStdout : Stream::kStderr,
                 Bytes(buf.begin(), buf.begin() + n)};
      e.output_sent(static_cast<std::size_t>(n));
      send(out);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      // Empty after the process is gone: only a background child could still
      // write, and it does not keep the exec open.
      if (e.reaped()) {
        unwatch(fd);
        e.close_output(stream);
      }
      return;
    }
    unwatch(fd);  // end of file or error
    e.close_output(stream);
    return;
  }
}

void Agent::on_stdin_writable(ExecSession& e) {
  int fd_before = e.stdin_fd();
  std::uint32_t written = e.flush_stdin();
  if (fd_before >= 0 && e.stdin_fd() < 0) unwatch(fd_before);
  if (written > 0) send(StdinAck{e.id(), written});
}

void Agent::on_sigchld() {
  signalfd_siginfo info;
  while (::read(signal_fd_, &info, sizeof info) > 0) {
  }
  for (;;) {
    int status = 0;
    struct rusage usage {};
    pid_t pid = ::wait4(-1, &status, WNOHANG, &usage);
    if (pid <= 0) break;
    auto it = exec_by_pid_.find(pid);
    if (it == exec_by_pid_.end()) continue;  // an orphan reparented to us
    std::uint32_t id = it->second;
    exec_by_pid_.erase(it);
    auto e = execs_.find(id);
    if (e == execs_.end()) continue;
    int stdin_fd = e->second->stdin_fd();
    if (stdin_fd >= 0) unwatch(stdin_fd);
    e->second->set_reaped(status, usage);
    for (int s = 0; s < 2; ++s) on_output_readable(*e->second, s);
    finish_if_done(id);
  }
}

void Agent::finish_if_done(std::uint32_t id) {
  auto it = execs_.find(id);
  if (it == execs_.end() || !it->second->reaped() || !it->second->outputs_closed()) return;
  send(it->second->exit_message());
  execs_.erase(it);
}

void Agent::kill_all_execs() {
  for (auto& [id, e] : execs_) e->signal(SIGKILL);
}

void Agent::shutdown() {
  if (mode_ == Mode::kServeFd) {
    kill_all_execs();
    on_port_writable();
    std::exit(0);
  }
  std::fprintf(stderr, "sandbox-agent: powering off\n");
  power_off();
}

}  // namespace sandboxd::guest
