// What an exec and a sandbox deliver to: a client connection. The exec pulls
// the pace from the sink (can_send) instead of pushing into an unbounded
// queue, so a slow client slows the log, and a full log pauses the process.
#pragma once

#include <memory>
#include <string>

#include "daemon/session/exec_log.hpp"
#include "daemon/session/views.hpp"

namespace sandboxd::session {

class ExecSink {
 public:
  virtual ~ExecSink() = default;
  // Whether the sink takes another entry now. When it said no, it calls the
  // exec's pump() once it has room again.
  virtual bool can_send() const = 0;
  virtual void send_entry(SharedEntry entry) = 0;
  // An exec whose stdin backlog held this sink back has room again.
  virtual void stdin_room() = 0;
};

class SandboxSink {
 public:
  virtual ~SandboxSink() = default;
  virtual void send_sandbox_state(const SandboxStateEvent& event) = 0;
  // The exec.started or exec.exit entry of one of the sandbox's execs, as
  // its log holds it (a sink attached to that exec gets it there too).
  virtual void send_exec_event(const std::string& exec_id, SharedEntry entry) = 0;
  // A new flow of the sandbox's guest and its verdict (net.flow).
  virtual void send_net_flow(const NetFlowEvent& event) = 0;
};

}  // namespace sandboxd::session
