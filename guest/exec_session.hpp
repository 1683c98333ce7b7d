// One process the host asked for: its pipes, its credit, its exit.
//
// The session only holds state and does the system calls on its own fds; the
// agent's loop decides when (readiness, credit, queue limits) and turns what
// happens into messages.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "protocol/messages.hpp"

namespace sandboxd::guest {

class ExecSession {
 public:
  struct StartResult {
    bool started = false;
    protocol::Exit failure;  // when !started: kind kStartFailed with status 126/127
  };

  explicit ExecSession(std::uint32_t id) : id_(id) {}
  ~ExecSession();
  ExecSession(const ExecSession&) = delete;
  ExecSession& operator=(const ExecSession&) = delete;

  StartResult start(const protocol::ExecStart& request);

  std::uint32_t id() const { return id_; }
  pid_t pid() const { return pid_; }

  // Output side. Index 0 is stdout, 1 stderr; fd -1 once closed.
  int output_fd(int i) const { return out_fd_[i]; }
  void close_output(int i);
  bool outputs_closed() const { return out_fd_[0] < 0 && out_fd_[1] < 0; }
  std::uint64_t output_credit() const { return protocol::kOutputWindow - unacked_output_; }
  void output_sent(std::size_t n) { unacked_output_ += n; }
  // False when the host acknowledged more than was sent.
  bool output_acked(std::uint32_t n);

  // Stdin side.
  int stdin_fd() const { return stdin_fd_; }
  // Queues data; returns how many bytes were beyond the window and dropped.
  std::size_t queue_stdin(const Bytes& data, bool eof);
  bool stdin_pending() const { return stdin_off_ < stdin_queue_.size(); }
  // Writes what the pipe takes; returns the bytes to acknowledge.
  std::uint32_t flush_stdin();

  // Exit side.
  void set_reaped(int wait_status, const struct rusage& usage);
  bool reaped() const { return reaped_; }
  protocol::Exit exit_message() const;

  // Signals the process group (or the process, if the group is gone).
  void signal(int signo);

 private:
  void close_stdin();

  std::uint32_t id_;
  pid_t pid_ = -1;
  int out_fd_[2] = {-1, -1};
  int stdin_fd_ = -1;
  bool stdin_accepting_ = true;  // false once eof was requested or stdin is closed
  bool stdin_eof_ = false;
  Bytes stdin_queue_;
  std::size_t stdin_off_ = 0;
  std::uint64_t unacked_output_ = 0;
  bool reaped_ = false;
  int wait_status_ = 0;
  struct rusage usage_ {};
};

}  // namespace sandboxd::guest
