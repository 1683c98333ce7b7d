// The agent's serving loop: one thread, one epoll set, every fd non-blocking.
//
// What it waits on: the control port (frames from the host; writable when the
// outbound queue is pending), a signalfd for SIGCHLD, and each exec's pipes.
// An exec's stdout/stderr are watched only while it has output credit and
// the outbound queue is below its cap, so a host that stops acknowledging
// stops the process (its pipe fills) instead of growing memory here.
//
// As PID 1 it reaps every child; one of them, the mounts bridge, it is told
// to keep (KeptProcess below) and forks again when it is reaped.
//
// Exit ordering: Exit is sent once the process has been reaped and both of
// its output pipes are closed, so it always follows the last Output. A pipe
// still held open by a background grandchild after the process was reaped is
// read until it is empty (or has given what it held at the reap) and closed.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "guest/event_loop.hpp"
#include "guest/exec_session.hpp"
#include "guest/outbound_queue.hpp"
#include "protocol/frame_decoder.hpp"

namespace sandboxd::guest {

// A process PID 1 keeps running beside the agent: the mounts bridge
// (guest/fs_bridge.hpp), apart so that its faults are not the agent's. It
// outlives any one Agent (run_as_init makes a new one after a failure), so
// the caller owns it; the Agent that reaps it starts it again.
struct KeptProcess {
  static constexpr std::chrono::seconds kRestartDelay{1};
  const char* name = "";  // for the console
  // Forks it and returns its pid, or -1 if it could not (tried again later).
  std::function<pid_t()> start;
  pid_t pid = -1;  // -1: not running; started at restart_at unless finished
  std::chrono::steady_clock::time_point restart_at{};
  // It exited with status 0: it has nothing to do (the host offers no port
  // for it), so it is not started again.
  bool finished = false;
};

class Agent {
 public:
  enum class Mode {
    kInit,      // PID 1 in the guest: reaps everything, powers off on Shutdown
    kServeFd,   // a host process under test: exits on Shutdown or end of stream
  };
  // Takes over `port_fd` (made non-blocking and close-on-exec; closed at the
  // end). `kept`, if given, is restarted whenever this agent reaps it.
  Agent(int port_fd, Mode mode, std::shared_ptr<KeptProcess> kept = nullptr);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Serves until the host hangs up (kServeFd) or forever (kInit).
  void run();

  static constexpr std::size_t kMaxExecs = 256;
  // Above this much queued for the host, no process output is read.
  static constexpr std::size_t kOutboundCap = 2u << 20;
  // Above this, not even the port is read: a host that sends requests but
  // never reads the answers stops itself instead of growing the queue.
  static constexpr std::size_t kOutboundHardCap = 8u << 20;
  // How long to wait before trying the port again after the host went away.
  static constexpr std::chrono::milliseconds kPortRetry{50};

 private:
  void send(const protocol::Message& m) { outbound_.push(m); }
  void dispatch(std::uint64_t tag, std::uint32_t events);
  void flush_outbound();
  void port_down();
  void on_port_readable();
  void on_message(protocol::Message&& m);
  void on_exec_start(const protocol::ExecStart& m);
  void on_output_ack(const protocol::OutputAck& m);
  void on_stdin(const protocol::Stdin& m);
  void on_signal(const protocol::Signal& m);
  void on_resize(const protocol::Resize& m);
  void on_sigchld();
  void restart_kept();
  int kept_timeout_ms() const;
  void on_output_readable(ExecSession& e, int stream);
  void on_stdin_writable(ExecSession& e);
  void drain_reaped();
  void finish_if_done(std::uint32_t id);
  void update_interest();
  bool may_read_output(const ExecSession& e) const;
  void kill_all_execs();
  void shutdown();

  int port_fd_;
  Mode mode_;
  EventLoop loop_;
  int signal_fd_ = -1;
  protocol::FrameDecoder decoder_;
  OutboundQueue outbound_;
  // The host end is not there (kInit): the port is out of the epoll set
  // until this time, then tried again.
  bool port_down_ = false;
  std::chrono::steady_clock::time_point port_retry_at_{};
  std::map<std::uint32_t, std::unique_ptr<ExecSession>> execs_;
  std::map<pid_t, std::uint32_t> exec_by_pid_;
  // Recently finished ids: an OutputAck for one is a normal race, not an error.
  std::set<std::uint32_t> finished_;
  std::deque<std::uint32_t> finished_order_;
  std::shared_ptr<KeptProcess> kept_;
  bool done_ = false;
};

}  // namespace sandboxd::guest
