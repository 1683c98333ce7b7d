#include "daemon/session/exec_log.hpp"

namespace sandboxd::session {

std::uint64_t ExecLog::append_output(protocol::Stream stream, ByteSpan data) {
  LogEntry entry;
  entry.seq = next_seq_;
  entry.binary = true;
  entry.message = format_->output(ids_, entry.seq, stream, data);
  entry.output_bytes = data.size();
  return push(std::move(entry));
}

std::uint64_t ExecLog::append_event(const ExecEvent& event) {
  LogEntry entry;
  entry.seq = next_seq_;
  entry.event = event.kind;
  entry.message = format_->event(ids_, entry.seq, event);
  return push(std::move(entry));
}

std::uint64_t ExecLog::push(LogEntry entry) {
  output_bytes_ += entry.output_bytes;
  entries_.push_back(std::make_shared<const LogEntry>(std::move(entry)));
  return next_seq_++;
}

SharedEntry ExecLog::find(std::uint64_t seq) const {
  if (seq < first_seq() || seq > last_seq()) return nullptr;
  return entries_[seq - first_seq()];
}

bool ExecLog::trim(std::uint64_t delivered_below) {
  bool dropped = false;
  while (!entries_.empty() && entries_.front()->seq < delivered_below &&
         output_bytes_ - entries_.front()->output_bytes >= capacity_ / 2) {
    output_bytes_ -= entries_.front()->output_bytes;
    entries_.pop_front();
    dropped = true;
  }
  return dropped;
}

}  // namespace sandboxd::session
