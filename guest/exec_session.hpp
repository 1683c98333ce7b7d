// One process the host asked for: its pipes, its credit, its exit.
//
// The session only holds state and does the system calls on its own fds; the
// agent's loop decides when (readiness, credit, queue limits) and turns what
// happens into messages.
//
// With a terminal (ExecStart::pty) the process gets the slave side of a new
// pseudo-terminal for stdin, stdout and stderr, and the session holds the
// master twice: as the stdout fd and, duplicated, as the stdin fd, so each fd
// has one owner and closes on its own schedule. There is no stderr fd.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
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

  // Runs the process as request.user (exec_session.cpp: posix_spawn for root,
  // a fork that sets the groups, gid and uid for anyone else). A builtin
  // (request.builtin) always takes the fork, whose child then runs the file
  // tool (file_tool.hpp) on pipes instead of a program.
  StartResult start(const protocol::ExecStart& request);

  std::uint32_t id() const { return id_; }
  pid_t pid() const { return pid_; }

  // Output side. Index 0 is stdout, 1 stderr; fd -1 once closed (a pty exec
  // has no stderr fd at all).
  int output_fd(int i) const { return out_fd_[i]; }
  void close_output(int i);
  bool outputs_closed() const { return out_fd_[0] < 0 && out_fd_[1] < 0; }
  std::uint64_t output_credit() const { return protocol::kOutputWindow - unacked_output_; }
  void output_sent(std::size_t n);
  // How much more may be read from pipe `i`: unbounded while the process
  // runs; after the reap, what the pipe held then, so a background child that
  // keeps writing cannot keep the exec open.
  std::size_t output_budget(int i) const { return budget_[i]; }
  void output_read(int i, std::size_t n) { budget_[i] -= std::min(budget_[i], n); }
  // False when the host acknowledged more than was sent.
  bool output_acked(std::uint32_t n);

  // Stdin side.
  int stdin_fd() const { return stdin_fd_; }
  // What became of a Stdin message's data right away.
  struct StdinQueued {
    std::uint32_t discarded = 0;      // never to be written: acknowledge now
    std::uint32_t over_window = 0;    // of those, beyond kStdinWindow (a host error)
  };
  // Queues data for the process. Data nobody will read (no stdin, stdin
  // closed or at eof, process gone) and data beyond the window is discarded
  // but still acknowledged, so the host's credit stays in step.
  StdinQueued queue_stdin(const Bytes& data, bool eof);
  // Something waits to be written: queued bytes, or a pty's end-of-file character.
  bool stdin_pending() const { return stdin_off_ < stdin_queue_.size() || (pty_ && stdin_eof_ && !veof_written_); }
  // Writes what the pipe takes; returns the bytes written, to acknowledge.
  std::uint32_t flush_stdin();
  // Nothing more will be written: eof was reached (on a pty, its end-of-file
  // character written), or the process closed its stdin.
  bool stdin_finished() const;
  // Closes stdin; returns the queued bytes thrown away, to be acknowledged.
  // The loop stops watching the fd first: on a pty it is a dup of the master,
  // and epoll only drops an fd by itself once every dup of it is closed.
  std::uint32_t close_stdin();

  // Exit side. Closes stdin; returns the queued stdin bytes thrown away, to
  // be acknowledged.
  std::uint32_t set_reaped(int wait_status, const struct rusage& usage);
  bool reaped() const { return reaped_; }
  protocol::Exit exit_message() const;

  // Signals the process group (or the process, if the group is gone).
  // After the process was reaped, what is left of its group.
  void signal(int signo);

  // Sets the terminal's window size; the kernel sends SIGWINCH to its
  // foreground process group. False when the exec has no terminal.
  bool resize(std::uint16_t cols, std::uint16_t rows);

 private:
  // Takes the parent's ends of a started process's pipes (or terminal).
  StartResult finish_start(const protocol::ExecStart& request, const int in[2], const int out[2], const int err[2]);
  void write_veof();

  std::uint32_t id_;
  pid_t pid_ = -1;
  int out_fd_[2] = {-1, -1};
  int stdin_fd_ = -1;
  bool pty_ = false;
  bool stdin_accepting_ = true;  // false once eof was requested or stdin is closed
  bool stdin_eof_ = false;
  bool stdin_failed_ = false;    // a write failed: the process will never read more
  bool veof_written_ = false;
  Bytes stdin_queue_;
  std::size_t stdin_off_ = 0;
  std::uint64_t unacked_output_ = 0;
  std::size_t budget_[2] = {SIZE_MAX, SIZE_MAX};
  bool reaped_ = false;
  int wait_status_ = 0;
  struct rusage usage_ {};
};

}  // namespace sandboxd::guest
