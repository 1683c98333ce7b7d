// One exec as clients see it: started in a sandbox's guest, logged with
// sequence numbers, watched by any number of connections, ended exactly once
// with an exec.exit — whatever happens to the process, the guest or the
// sandbox — and then kept readable until its retention runs out.
//
// States (views.hpp, ExecState):
//   starting --ExecStarted--> running --Exit / end()--> exited
//   starting --refused, start deadline, end()--> exited (no exec.started)
// Log: exec.started (when it started), output, exec.timed_out (when its
// timeout ran out), and always exec.exit last.
//
// Pacing: output goes into the log as the guest sends it; the guest is told
// it may send more (OutputAck) only while the log is not full, and the log
// drops only entries every attached connection has been sent. Stdin from
// clients waits in a bounded backlog until the guest grants credit.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/agent/guest_agent.hpp"
#include "daemon/session/error.hpp"
#include "daemon/session/exec_log.hpp"
#include "daemon/session/exec_sink.hpp"
#include "daemon/session/exit_info.hpp"
#include "daemon/session/views.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::session {

struct ExecSpec {
  std::string id;
  std::string owner;
  std::string sandbox_id;
  std::vector<std::string> argv;
  bool pty = false;
  bool stdin_open = false;
  std::uint64_t timeout_ms = 0;
  std::size_t log_capacity = 16u << 20;
  const LogFormat* log_format = nullptr;  // required
};

class Exec : public std::enable_shared_from_this<Exec> {
 public:
  using State = ExecState;
  // Stdin the daemon holds for one exec beyond what the guest accepted.
  static constexpr std::size_t kStdinBacklogLimit = 1u << 20;
  // How long the guest gets to confirm a kill before the exec is ended anyway.
  static constexpr std::chrono::seconds kKillGrace{10};
  // How long the guest gets to answer an ExecStart.
  static constexpr std::chrono::seconds kStartDeadline{30};

  Exec(boost::asio::io_context& io, ExecSpec spec);
  ~Exec();

  // Sends the ExecStart. `on_event` receives the exec.started and exec.exit
  // entries (for sandbox subscribers); `on_finished` runs once, after
  // exec.exit is logged.
  void start(std::weak_ptr<agent::GuestAgent> agent, agent::ExecRequest request,
             std::function<void(SharedEntry)> on_event, std::function<void()> on_finished);

  // When several errors apply, the first of: not_running, then stdin_closed
  // or not_a_tty.
  Expected<void, Error> write_stdin(ByteSpan data, bool eof);
  std::size_t stdin_backlog() const { return stdin_backlog_.size() - stdin_offset_; }
  Expected<void, Error> resize(std::uint16_t cols, std::uint16_t rows);
  Expected<void, Error> signal(int signo);
  Expected<void, Error> kill();
  // The sandbox is going away (or gone): end the exec now unless it has.
  // `sandbox_reason` is the sandbox's own reason (destroyed, idle, ...).
  void end(EndCause cause, const std::string& message, const std::string& sandbox_reason);

  // Subscriptions. attach() replays from after_seq + 1.
  Expected<void, Error> attach(const std::shared_ptr<ExecSink>& sink, std::uint64_t after_seq, bool read_only);
  void detach(const ExecSink* sink);
  // Whether `sink` is attached with the right to write stdin and control.
  Expected<void, Error> check_control(const ExecSink* sink) const;
  bool is_attached(const ExecSink* sink) const;
  // Sends what the log holds to every sink with room.
  void pump();

  const std::string& id() const { return spec_.id; }
  const std::string& owner() const { return spec_.owner; }
  const std::string& sandbox_id() const { return spec_.sandbox_id; }
  State state() const { return state_; }
  std::uint64_t first_seq() const { return log_.first_seq(); }
  std::chrono::steady_clock::time_point finished_at() const { return finished_at_; }
  ExecInfo info() const;

 private:
  struct Subscription {
    std::weak_ptr<ExecSink> sink;
    const ExecSink* key = nullptr;
    std::uint64_t next_seq = 1;
    bool read_only = false;
  };

  void on_started(std::uint32_t pid);
  void on_output(protocol::Stream stream, Bytes&& data);
  void on_exit(const protocol::Exit& exit);
  void on_failed(const std::string& reason);
  void finish(const ExitInfo& info);
  void flush_stdin();
  void log_event(const ExecEvent& event);
  void release_output_credit();
  void arm_timeout();
  std::uint64_t elapsed_ms() const;
  std::shared_ptr<agent::GuestAgent> agent() const { return agent_.lock(); }

  ExecSpec spec_;
  ExecLog log_;
  State state_ = State::kStarting;
  std::weak_ptr<agent::GuestAgent> agent_;
  std::uint32_t agent_id_ = 0;
  std::uint32_t pid_ = 0;
  std::vector<Subscription> subscriptions_;
  std::uint64_t delivered_below_ = 1;  // the furthest any sink got
  std::uint32_t output_unacked_ = 0;   // logged, acknowledgement held while full
  Bytes stdin_backlog_;
  std::size_t stdin_offset_ = 0;
  bool stdin_eof_requested_ = false;
  bool stdin_closed_ = false;
  bool stdin_was_full_ = false;
  EndCause cause_ = EndCause::kNone;
  std::optional<ExitInfo> exit_;
  std::chrono::system_clock::time_point started_wall_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point finished_at_{};
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer start_timer_;
  std::function<void(SharedEntry)> on_event_;
  std::function<void()> on_finished_;
};

}  // namespace sandboxd::session
