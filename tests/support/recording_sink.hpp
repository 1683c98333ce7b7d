// What a client connection would have received from the sandbox service,
// kept for tests to look at: exec log entries in a format that reads as
// text, sandbox events, and the service's calls back for room.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "daemon/session/exec_log.hpp"
#include "daemon/session/exec_sink.hpp"

namespace sandboxd::testing {

// Entries as one line of text each:
//   "out <exec> <seq> <stdout|stderr> <data>"
//   "exec.started <exec> <seq> pid=<pid>"
//   "exec.timed_out <exec> <seq>"
//   "exec.exit <exec> <seq> reason=<r> code=<c|-> signal=<s|-> sandbox_reason=<r|->"
class TextLogFormat final : public session::LogFormat {
 public:
  std::string output(const session::ExecIds& ids, std::uint64_t seq, protocol::Stream stream,
                     ByteSpan data) const override {
    return "out " + ids.exec + " " + std::to_string(seq) + (stream == protocol::Stream::kStderr ? " stderr " : " stdout ") +
           std::string(as_chars(data));
  }
  std::string event(const session::ExecIds& ids, std::uint64_t seq, const session::ExecEvent& e) const override {
    using Kind = session::ExecEvent::Kind;
    std::string head = (e.kind == Kind::kStarted ? "exec.started " : e.kind == Kind::kTimedOut ? "exec.timed_out " : "exec.exit ") +
                       ids.exec + " " + std::to_string(seq);
    if (e.kind == Kind::kStarted) return head + " pid=" + std::to_string(e.pid);
    if (e.kind == Kind::kTimedOut) return head;
    auto opt = [](const std::optional<int>& v) { return v ? std::to_string(*v) : std::string("-"); };
    return head + " reason=" + e.exit.reason + " code=" + opt(e.exit.exit_code) + " signal=" + opt(e.exit.signal) +
           " sandbox_reason=" + (e.exit.sandbox_reason.empty() ? "-" : e.exit.sandbox_reason);
  }
};

class RecordingSink : public session::ExecSink, public session::SandboxSink {
 public:
  bool room = true;  // what can_send() answers
  std::vector<session::SharedEntry> entries;
  std::vector<session::SandboxStateEvent> states;
  std::vector<std::string> exec_events;  // the messages of exec events from subscriptions
  std::vector<session::NetFlowEvent> flows;
  unsigned stdin_rooms = 0;

  bool can_send() const override { return room; }
  void send_entry(session::SharedEntry entry) override { entries.push_back(std::move(entry)); }
  void stdin_room() override { ++stdin_rooms; }
  void send_sandbox_state(const session::SandboxStateEvent& event) override { states.push_back(event); }
  void send_exec_event(const std::string&, session::SharedEntry entry) override { exec_events.push_back(entry->message); }
  void send_net_flow(const session::NetFlowEvent& event) override { flows.push_back(event); }

  // The entries' messages that start with `prefix`.
  std::vector<std::string> lines(const std::string& prefix = "") const {
    std::vector<std::string> out;
    for (const auto& e : entries)
      if (e->message.rfind(prefix, 0) == 0) out.push_back(e->message);
    return out;
  }
  std::size_t count(const std::string& prefix) const { return lines(prefix).size(); }
  std::string stdout_text() const {
    std::string out;
    for (const auto& line : lines("out ")) {
      // "out <exec> <seq> stdout <data>"
      auto pos = line.find(" stdout ");
      if (pos != std::string::npos) out += line.substr(pos + 8);
    }
    return out;
  }
  bool saw_state(session::SandboxState state) const {
    return std::any_of(states.begin(), states.end(), [&](const auto& s) { return s.state == state; });
  }
};

}  // namespace sandboxd::testing
