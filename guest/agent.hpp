// The agent's serving loop: one thread, one epoll set, every fd non-blocking.
//
// What it waits on: the control port (frames from the host; writable when the
// outbound queue is pending), a signalfd for SIGCHLD, and each exec's pipes.
// An exec's stdout/stderr are watched only while it has output credit and
// the outbound queue is below its cap, so a host that stops acknowledging
// stops the process (its pipe fills) instead of growing memory here.
//
// Exit ordering: Exit is sent once the process has been reaped and both of
// its output pipes are closed, so it always follows the last Output. A pipe
// still held open by a background grandchild after the process was reaped is
// read until it is empty and then closed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "guest/exec_session.hpp"
#include "protocol/frame_decoder.hpp"

namespace sandboxd::guest {

class Agent {
 public:
  enum class Mode {
    kInit,      // PID 1 in the guest: reaps everything, powers off on Shutdown
    kServeFd,   // a host process under test: exits on Shutdown or end of stream
  };
  Agent(int port_fd, Mode mode);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Serves until the host hangs up (kServeFd) or forever (kInit).
  void run();

  static constexpr std::size_t kMaxExecs = 256;
  static constexpr std::size_t kOutboundCap = 2u << 20;

 private:
  void send(const protocol::Message& m);
  void on_port_readable();
  void on_port_writable();
  void on_message(protocol::Message&& m);
  void on_exec_start(const protocol::ExecStart& m);
  void on_sigchld();
  void on_output_readable(ExecSession& e, int stream);
  void on_stdin_writable(ExecSession& e);
  void finish_if_done(std::uint32_t id);
  void update_interest();
  void watch(int fd, std::uint32_t events, std::uint64_t tag);
  void unwatch(int fd);
  void kill_all_execs();
  [[noreturn]] void shutdown();

  int port_fd_;
  Mode mode_;
  int epoll_fd_ = -1;
  int signal_fd_ = -1;
  protocol::FrameDecoder decoder_;
  Bytes outbound_;
  std::size_t outbound_off_ = 0;
  bool port_hung_up_ = false;
  bool port_watch_out_ = false;
  std::map<std::uint32_t, std::unique_ptr<ExecSession>> execs_;
  std::map<pid_t, std::uint32_t> exec_by_pid_;
  std::map<int, std::uint32_t> watched_;  // fd -> current epoll events
  bool done_ = false;
};

}  // namespace sandboxd::guest
