// One exec's log: its events and output chunks, numbered from 1 without gaps,
// each kept as the ready-to-send message of the wire that serves it
// (WS_PROTOCOL.md, "Exec output, sequence numbers and resuming").
//
// What an entry looks like on the wire is not this file's business: the
// owner gives a LogFormat (the API layer's; tests give their own), and each
// entry is encoded once, when it is appended. Entries are shared, immutable
// messages: every attached connection sends the same bytes, and a
// connection's write queue keeps an entry alive after the log dropped it.
//
// Bounds: the log counts the bytes of its output chunks. It drops its oldest
// entries only when they were delivered (below the caller's delivered mark)
// and only while what remains still holds at least half the capacity, so the
// latest half-capacity that went out is always there to resume from. full()
// tells the owner to stop taking output from the process; nothing is ever
// dropped undelivered.
//
// Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/session/exit_info.hpp"
#include "protocol/bytes.hpp"
#include "protocol/messages.hpp"

namespace sandboxd::session {

// The entries of a log that are not output.
struct ExecEvent {
  enum class Kind { kStarted, kTimedOut, kExit };
  Kind kind = Kind::kStarted;
  std::uint32_t pid = 0;         // kStarted
  std::uint64_t timeout_ms = 0;  // kTimedOut
  ExitInfo exit;                 // kExit
};

// Whose log it is, as every entry names it.
struct ExecIds {
  std::string exec;
  std::string sandbox;
};

class LogFormat {
 public:
  virtual ~LogFormat() = default;
  virtual std::string output(const ExecIds& ids, std::uint64_t seq, protocol::Stream stream, ByteSpan data) const = 0;
  virtual std::string event(const ExecIds& ids, std::uint64_t seq, const ExecEvent& event) const = 0;
};

struct LogEntry {
  std::uint64_t seq = 0;
  bool binary = false;                     // an output chunk; else an event
  std::optional<ExecEvent::Kind> event;    // which event, for events
  std::string message;                     // the whole message, as the format made it
  std::size_t output_bytes = 0;            // data bytes of an output chunk
};
using SharedEntry = std::shared_ptr<const LogEntry>;

class ExecLog {
 public:
  ExecLog(ExecIds ids, std::size_t capacity, const LogFormat& format)
      : ids_(std::move(ids)), capacity_(capacity), format_(&format) {}

  // Appends an output chunk; returns its seq.
  std::uint64_t append_output(protocol::Stream stream, ByteSpan data);
  // Appends an event; returns its seq.
  std::uint64_t append_event(const ExecEvent& event);

  // The entry with this seq; nullptr when dropped already or not yet written.
  SharedEntry find(std::uint64_t seq) const;
  // Oldest seq still held (last_seq() + 1 when empty) and newest written.
  std::uint64_t first_seq() const { return next_seq_ - entries_.size(); }
  std::uint64_t last_seq() const { return next_seq_ - 1; }

  // Drops delivered entries (seq < delivered_below) while what is left still
  // holds at least half the capacity. Returns whether anything was dropped.
  bool trim(std::uint64_t delivered_below);
  bool full() const { return output_bytes_ >= capacity_; }
  std::size_t output_bytes() const { return output_bytes_; }
  std::size_t capacity() const { return capacity_; }
  const ExecIds& ids() const { return ids_; }

 private:
  std::uint64_t push(LogEntry entry);

  ExecIds ids_;
  std::size_t capacity_;
  const LogFormat* format_;
  std::deque<SharedEntry> entries_;
  std::uint64_t next_seq_ = 1;
  std::size_t output_bytes_ = 0;
};

}  // namespace sandboxd::session
