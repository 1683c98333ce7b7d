// One exec's log: its events and output chunks, numbered from 1 without gaps,
// each kept as the ready-to-send WebSocket message (WS_PROTOCOL.md, "Exec
// output, sequence numbers and resuming").
//
// Entries are shared, immutable messages: every attached connection sends the
// same bytes, and a connection's write queue keeps an entry alive after the
// log dropped it.
//
// Bounds: the log counts the bytes of its output chunks. It drops its oldest
// entries only when they were delivered (below the caller's delivered mark)
// and more than half the capacity is held, so the latest half-capacity that
// went out is always there to resume from. full() tells the owner to stop
// taking output from the process; nothing is ever dropped undelivered.
//
// Pure: no I/O, no clock.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "protocol/bytes.hpp"
#include "protocol/ws/binary_frame.hpp"

namespace sandboxd::session {

struct LogEntry {
  std::uint64_t seq = 0;
  bool binary = false;          // an output frame; else a JSON event
  std::string message;          // the whole WebSocket message
  std::size_t output_bytes = 0; // data bytes of an output chunk
};
using SharedEntry = std::shared_ptr<const LogEntry>;

class ExecLog {
 public:
  ExecLog(std::string exec_id, std::size_t capacity) : exec_id_(std::move(exec_id)), capacity_(capacity) {}

  // Appends an output chunk as a binary frame; returns its seq.
  std::uint64_t append_output(protocol::ws::BinaryKind stream, ByteSpan data);
  // Appends an event; "seq" is added to it. Returns its seq.
  std::uint64_t append_event(boost::json::object event);

  // The entry with this seq; nullptr when dropped already or not yet written.
  SharedEntry find(std::uint64_t seq) const;
  // Oldest seq still held (last_seq() + 1 when empty) and newest written.
  std::uint64_t first_seq() const { return next_seq_ - entries_.size(); }
  std::uint64_t last_seq() const { return next_seq_ - 1; }

  // Drops delivered entries (seq < delivered_below) while more than half
  // the capacity is held. Returns whether anything was dropped.
  bool trim(std::uint64_t delivered_below);
  bool full() const { return output_bytes_ >= capacity_; }
  std::size_t output_bytes() const { return output_bytes_; }
  std::size_t capacity() const { return capacity_; }

 private:
  std::uint64_t push(LogEntry entry);

  std::string exec_id_;
  std::size_t capacity_;
  std::deque<SharedEntry> entries_;
  std::uint64_t next_seq_ = 1;
  std::size_t output_bytes_ = 0;
};

}  // namespace sandboxd::session
