// The client's view of one exec's log (WS_PROTOCOL.md, "Exec output, sequence
// numbers and resuming"): which entries are new, how the exec ended, and what
// sandboxctl exits with. Pure, so resuming without loss or duplicates is
// unit-tested without a daemon.
//
// Every log entry (exec.started, output chunks, exec.timed_out, exec.exit)
// has a sequence number, 1.. with no gaps. After a reconnect the client
// attaches with the highest one it processed; anything at or below it that
// still arrives (a replay that overlaps, an event also sent to sandbox
// subscribers) is skipped here.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::ctl {

struct ExecExit {
  std::string reason;  // exited, signaled, timeout, killed, start_failed, sandbox_destroyed, sandbox_crashed
  std::optional<std::int64_t> exit_code;
  std::optional<std::int64_t> signal;
  std::string message;
};

// The members of an exec.exit event (or an Exec object's "exit").
ExecExit exit_from_json(const boost::json::object& exit);

// What sandboxctl exits with: the code for `exited`, 126/127 for
// `start_failed`, 128+signal for `signaled`, `timeout` and `killed`, and 255
// when the exec ended without a status of its own (sandbox destroyed or
// crashed, or a reason this client does not know).
int exit_status(const ExecExit& exit);

// A line for stderr saying why the exec ended when its status alone does not
// (a start failure, a timeout, the sandbox going away); empty otherwise.
std::string exit_notice(const ExecExit& exit, std::optional<std::int64_t> timeout_ms);

class ExecProgress {
 public:
  enum class Event { kIgnored, kStarted, kTimedOut, kExit };

  explicit ExecProgress(std::string exec_id, std::uint64_t after_seq = 0);

  const std::string& exec_id() const { return exec_id_; }
  // The highest sequence number processed: what to attach after.
  std::uint64_t last_seq() const { return last_seq_; }
  bool finished() const { return exit_.has_value(); }
  const std::optional<ExecExit>& exit() const { return exit_; }
  const boost::json::object& exit_event() const { return exit_event_; }
  std::optional<std::int64_t> timeout_ms() const { return timeout_ms_; }

  // An output frame of `exec` with `seq`: true when its bytes are new and
  // are to be written out.
  bool take_output(std::string_view exec, std::uint64_t seq);
  // An event frame: what it means for this exec, kIgnored for other execs,
  // other events and entries already processed.
  Event take_event(const boost::json::object& event);
  // The daemon no longer holds the entries before `first_seq`
  // (log_truncated): go on from there, accepting the gap.
  void skip_before(std::uint64_t first_seq);

 private:
  bool advance(std::uint64_t seq);

  std::string exec_id_;
  std::uint64_t last_seq_;
  std::optional<ExecExit> exit_;
  boost::json::object exit_event_;
  std::optional<std::int64_t> timeout_ms_;
};

// How long to wait before each reconnect attempt: from `first`, doubling up
// to `longest`, until `budget` has passed since the connection was lost.
class ReconnectBackoff {
 public:
  using Duration = std::chrono::milliseconds;
  explicit ReconnectBackoff(Duration budget = std::chrono::seconds(30), Duration first = Duration(100),
                            Duration longest = std::chrono::seconds(2));

  // The wait before the next attempt, `elapsed` after the loss; nullopt once
  // the budget is spent. The last wait is shortened to end with the budget.
  std::optional<Duration> next(Duration elapsed);
  void reset();

 private:
  Duration budget_, first_, longest_, current_;
};

// A fresh exec id ("ctl-" and 16 hex digits) so a start repeated after a lost
// answer names the same exec instead of starting a second one.
std::string generate_exec_id();

}  // namespace sandboxd::ctl
