#include "daemon/api/wire_format.hpp"

#include <boost/json/serialize.hpp>

#include "policy/policy_json.hpp"
#include "protocol/ws/binary_frame.hpp"

namespace sandboxd::api {
namespace json = boost::json;

namespace {
std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
}  // namespace

json::object to_json(const session::SandboxInfo& s) {
  json::object labels;
  for (const auto& [k, v] : s.labels) labels[k] = v;
  json::object o{{"id", s.id},
                 {"state", to_string(s.state)},
                 {"image", s.image},
                 {"cpus", s.cpus},
                 {"memory_mib", s.memory_mib},
                 {"labels", std::move(labels)},
                 {"created_at", unix_ms(s.created_at)},
                 {"idle_timeout_s", s.idle_timeout_s},
                 {"egress", s.network.label()},
                 {"from_pool", s.from_pool},
                 {"execs_running", s.execs_running}};
  if (s.network.mode) o["network"] = nullptr;
  else o["network"] = policy::policy_to_json(s.network.rules);
  if (s.expires_at) o["expires_at"] = unix_ms(*s.expires_at);
  else o["expires_at"] = nullptr;
  if (s.key) o["key"] = *s.key;
  else o["key"] = nullptr;
  o["boot_ms"] = s.boot_ms;
  if (s.disk_mib) o["disk_mib"] = s.disk_mib;
  else o["disk_mib"] = nullptr;
  o["disk_backing"] = session::to_string(s.disk_backing);
  if (s.disk) o["disk"] = {{"size", s.disk->size}, {"used", s.disk->used}, {"available", s.disk->available}};
  json::object mounts;
  for (const auto& m : s.mounts) {
    json::object mount{{"type", m.type}, {"read_only", m.read_only}};
    if (m.type == "host") mount["path"] = m.host_path;
    mounts[m.path] = std::move(mount);
  }
  o["mounts"] = std::move(mounts);
  return o;
}

void add_exit_members(const session::ExitInfo& exit, json::object& out) {
  out["reason"] = exit.reason;
  if (exit.exit_code) out["exit_code"] = *exit.exit_code;
  else out["exit_code"] = nullptr;
  if (exit.signal) out["signal"] = *exit.signal;
  else out["signal"] = nullptr;
  out["duration_ms"] = exit.duration_ms;
  out["message"] = exit.message;
  if (!exit.sandbox_reason.empty()) out["sandbox_reason"] = exit.sandbox_reason;
  else out["sandbox_reason"] = nullptr;
}

json::object to_json(const session::ExecInfo& e) {
  json::array argv;
  for (const auto& a : e.argv) argv.emplace_back(a);
  json::object o{{"id", e.id},
                 {"sandbox", e.sandbox},
                 {"argv", std::move(argv)},
                 {"pty", e.pty},
                 {"stdin", e.stdin_open},
                 {"state", to_string(e.state)},
                 {"started_at", unix_ms(e.started_at)},
                 {"first_seq", e.first_seq},
                 {"last_seq", e.last_seq}};
  if (e.pid) o["pid"] = e.pid;
  else o["pid"] = nullptr;
  if (e.exit) {
    json::object x;
    add_exit_members(*e.exit, x);
    o["exit"] = std::move(x);
  } else {
    o["exit"] = nullptr;
  }
  return o;
}

namespace {
// Valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF) is
// kept; every other byte becomes U+FFFD. Sets `lossy` when one did.
std::string utf8_or_replaced(std::string_view in, bool& lossy) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    auto b = static_cast<unsigned char>(in[i]);
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    bool ok = n > 0 && i + n <= in.size();
    std::uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
    for (std::size_t k = 1; ok && k < n; ++k) {
      auto c = static_cast<unsigned char>(in[i + k]);
      ok = (c >> 6) == 0x2;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (ok) {
      static constexpr std::uint32_t kMinOf[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMinOf[n] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (ok) {
      out.append(in.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      lossy = true;
      ++i;
    }
  }
  return out;
}
}  // namespace

json::object to_json(const protocol::FileEntry& e) {
  bool lossy = false;
  json::object o{{"name", utf8_or_replaced(e.name, lossy)},
                 {"type", protocol::to_string(e.kind)},
                 {"size", e.size},
                 {"mode", e.mode},
                 {"mtime_ms", e.mtime_ns / 1000000},
                 {"uid", e.uid},
                 {"gid", e.gid}};
  if (e.kind == protocol::FileKind::kSymlink) o["target"] = utf8_or_replaced(e.target, lossy);
  if (lossy) o["lossy"] = true;
  return o;
}

std::string sandbox_state_event(const session::SandboxStateEvent& event) {
  json::object o{{"type", "event"}, {"event", "sandbox.state"}, {"sandbox", event.sandbox}, {"state", to_string(event.state)}};
  if (!event.reason.empty()) o["reason"] = event.reason;
  if (!event.detail.empty()) o["detail"] = event.detail;
  return json::serialize(o);
}

std::string net_flow_event(const session::NetFlowEvent& event) {
  const net::FlowAudit& f = event.flow;
  auto endpoint = [](net::wire::Ipv4Address ip, std::uint16_t port) { return ip.to_string() + ":" + std::to_string(port); };
  json::object o{{"type", "event"},
                 {"event", "net.flow"},
                 {"sandbox", event.sandbox},
                 {"time", unix_ms(f.time)},
                 {"protocol", to_string(f.protocol)},
                 {"from", endpoint(f.key.guest_ip, f.key.guest_port)},
                 {"to", endpoint(f.key.remote_ip, f.key.remote_port)},
                 {"verdict", to_string(f.verdict)},
                 {"reason", f.reason},
                 {"destination", to_string(f.destination)}};
  if (f.name.empty()) o["name"] = nullptr;
  else o["name"] = f.name;
  if (f.destination == net::FlowDestination::kUpstream) o["connected_to"] = endpoint(f.connected_to.ip, f.connected_to.port);
  else o["connected_to"] = nullptr;
  o["unreported_before"] = event.unreported_before;
  return json::serialize(o);
}

std::string WsLogFormat::output(const session::ExecIds& ids, std::uint64_t seq, protocol::Stream stream,
                                ByteSpan data) const {
  auto kind = stream == protocol::Stream::kStderr ? protocol::ws::BinaryKind::kStderr : protocol::ws::BinaryKind::kStdout;
  Bytes header = protocol::ws::output_frame_header(kind, ids.exec, seq);
  std::string message;
  message.reserve(header.size() + data.size());
  message.append(as_chars(header));
  message.append(as_chars(data));
  return message;
}

std::string WsLogFormat::event(const session::ExecIds& ids, std::uint64_t seq, const session::ExecEvent& event) const {
  using Kind = session::ExecEvent::Kind;
  const char* name = event.kind == Kind::kStarted ? "exec.started" : event.kind == Kind::kTimedOut ? "exec.timed_out" : "exec.exit";
  json::object o{{"type", "event"}, {"event", name}, {"exec", ids.exec}, {"sandbox", ids.sandbox}};
  switch (event.kind) {
    case Kind::kStarted: o["pid"] = event.pid; break;
    case Kind::kTimedOut: o["timeout_ms"] = event.timeout_ms; break;
    case Kind::kExit: add_exit_members(event.exit, o); break;
  }
  o["seq"] = seq;
  return json::serialize(o);
}

}  // namespace sandboxd::api
