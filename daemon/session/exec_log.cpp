#include "daemon/session/exec_log.hpp"

#include <boost/json/serialize.hpp>

namespace sandboxd::session {

std::uint64_t ExecLog::append_output(protocol::ws::BinaryKind stream, ByteSpan data) {
  LogEntry entry;
  entry.seq = next_seq_;
  entry.binary = true;
  Bytes header = protocol::ws::output_frame_header(stream, exec_id_, entry.seq);
  entry.message.reserve(header.size() + data.size());
  entry.message.append(as_chars(header));
  entry.message.append(as_chars(data));
  entry.output_bytes = data.size();
  return push(std::move(entry));
}

std::uint64_t ExecLog::append_event(boost::json::object event) {
  LogEntry entry;
  entry.seq = next_seq_;
  event["seq"] = entry.seq;
  entry.message = boost::json::serialize(event);
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
  while (!entries_.empty() && output_bytes_ > capacity_ / 2 && entries_.front()->seq < delivered_below) {
    output_bytes_ -= entries_.front()->output_bytes;
    entries_.pop_front();
    dropped = true;
  }
  return dropped;
}

}  // namespace sandboxd::session
