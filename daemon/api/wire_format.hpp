// The sandbox service's values as the WebSocket protocol writes them
// (WS_PROTOCOL.md): the Sandbox and Exec objects, the Exit members, the
// events, and the exec log's entries (WsLogFormat, the LogFormat the
// service's logs are encoded with). Pure: values in, JSON or bytes out.
#pragma once

#include <boost/json/object.hpp>
#include <string>

#include "daemon/session/exec_log.hpp"
#include "protocol/file_entry.hpp"
#include "daemon/session/views.hpp"

namespace sandboxd::api {

boost::json::object to_json(const session::SandboxInfo& sandbox);
boost::json::object to_json(const session::ExecInfo& exec);
// Adds the Exit members (reason, exit_code, signal, duration_ms, message,
// sandbox_reason) to `out`.
void add_exit_members(const session::ExitInfo& exit, boost::json::object& out);
// A file's entry (file.stat, file.list). A name or target that is not
// UTF-8 has each bad byte replaced by U+FFFD, and "lossy": true.
boost::json::object to_json(const protocol::FileEntry& entry);
// A sandbox.state event, as the text of its frame.
std::string sandbox_state_event(const session::SandboxStateEvent& event);
std::string net_flow_event(const session::NetFlowEvent& event);

class WsLogFormat final : public session::LogFormat {
 public:
  // A binary output frame (protocol/ws/binary_frame.hpp).
  std::string output(const session::ExecIds& ids, std::uint64_t seq, protocol::Stream stream,
                     ByteSpan data) const override;
  // An exec.started, exec.timed_out or exec.exit event frame.
  std::string event(const session::ExecIds& ids, std::uint64_t seq, const session::ExecEvent& event) const override;
};

}  // namespace sandboxd::api
