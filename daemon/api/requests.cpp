#include "daemon/api/requests.hpp"

#include <signal.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <limits>

#include <openssl/evp.h>

#include "daemon/config/setting_values.hpp"
#include "policy/policy_json.hpp"
#include "protocol/fs_messages.hpp"
#include "protocol/messages.hpp"
#include "protocol/ws/binary_frame.hpp"

namespace sandboxd::api {
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxStringMember = 64 * 1024;
constexpr std::size_t kMaxIdMember = 64;

// What passwd(5) accounts are named with (useradd's rule, with '.' and upper
// case, which Debian allows): nothing that could be a ':' or a line break.
bool valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > protocol::kMaxUserName || name.front() == '-') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == '$';
    if (!ok) return false;
  }
  return true;
}

Unexpected<ApiError> bad(std::string_view field, std::string message) {
  return {ApiError::bad_request(std::string(field), std::move(message))};
}

// Member access that tells apart "absent" (nullptr) from "of the wrong type".
const json::value* member(const json::object& m, std::string_view name) {
  auto it = m.find(name);
  if (it == m.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

Expected<std::optional<std::string>, ApiError> optional_string(const json::object& m, std::string_view name,
                                                               std::size_t max_length = kMaxStringMember) {
  const json::value* v = member(m, name);
  if (!v) return std::optional<std::string>{};
  if (!v->is_string()) return bad(name, "expected a string");
  const auto& s = v->get_string();
  if (s.size() > max_length) return bad(name, "longer than " + std::to_string(max_length) + " bytes");
  if (s.find('\0') != json::string::npos) return bad(name, "contains a NUL character");
  return std::optional<std::string>{std::string(s)};
}

Expected<std::string, ApiError> required_string(const json::object& m, std::string_view name,
                                                std::size_t max_length = kMaxStringMember) {
  auto s = optional_string(m, name, max_length);
  if (!s) return Unexpected{s.error()};
  if (!*s) return bad(name, "required");
  if ((*s)->empty()) return bad(name, "must not be empty");
  return std::move(**s);
}

Expected<std::optional<std::uint64_t>, ApiError> optional_uint(const json::object& m, std::string_view name,
                                                               std::uint64_t min, std::uint64_t max) {
  const json::value* v = member(m, name);
  if (!v) return std::optional<std::uint64_t>{};
  std::string range = "expected an integer " + std::to_string(min) + ".." + std::to_string(max);
  std::uint64_t n = 0;
  if (v->is_uint64()) {
    n = v->get_uint64();
  } else if (v->is_int64()) {
    if (v->get_int64() < 0) return bad(name, range);
    n = static_cast<std::uint64_t>(v->get_int64());
  } else if (v->is_double()) {
    // JSON has one number type; 2.0 is an integer, 2.5 is not.
    double d = v->get_double();
    if (!(d >= 0 && d <= 1e18) || d != static_cast<double>(static_cast<std::uint64_t>(d))) return bad(name, range);
    n = static_cast<std::uint64_t>(d);
  } else {
    return bad(name, range);
  }
  if (n < min || n > max) return bad(name, range);
  return std::optional<std::uint64_t>{n};
}

Expected<bool, ApiError> optional_bool(const json::object& m, std::string_view name, bool fallback) {
  const json::value* v = member(m, name);
  if (!v) return fallback;
  if (!v->is_bool()) return bad(name, "expected true or false");
  return v->get_bool();
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  for (char c : name) {
    if (c == '=' || c == '\0') return false;
  }
  return true;
}

// {"NAME": "value", ...} -> ["NAME=value", ...]
Expected<std::vector<std::string>, ApiError> optional_env(const json::object& m, std::string_view name) {
  std::vector<std::string> out;
  const json::value* v = member(m, name);
  if (!v) return out;
  if (!v->is_object()) return bad(name, "expected an object of strings");
  if (v->get_object().size() > kMaxEnvEntries) return bad(name, "more than 1024 variables");
  for (const auto& kv : v->get_object()) {
    std::string key(kv.key());
    if (!valid_env_name(key)) return bad(name, "bad variable name '" + key.substr(0, 64) + "'");
    if (!kv.value().is_string()) return bad(name, key + ": expected a string");
    const auto& value = kv.value().get_string();
    if (value.find('\0') != json::string::npos || value.size() > kMaxStringMember)
      return bad(name, key + ": contains NUL or is longer than 64 KiB");
    out.push_back(key + "=" + std::string(value));
  }
  return out;
}

Expected<session::Labels, ApiError> optional_labels(const json::object& m, std::string_view name) {
  session::Labels out;
  const json::value* v = member(m, name);
  if (!v) return out;
  if (!v->is_object()) return bad(name, "expected an object of strings");
  if (v->get_object().size() > kMaxLabels) return bad(name, "more than 32 labels");
  for (const auto& kv : v->get_object()) {
    std::string key(kv.key());
    if (key.empty() || key.size() > 63) return bad(name, "label names are 1..63 characters");
    if (!kv.value().is_string()) return bad(name, key + ": expected a string");
    if (kv.value().get_string().size() > 255) return bad(name, key + ": values are at most 255 characters");
    out[key] = std::string(kv.value().get_string());
  }
  return out;
}

Expected<std::string, ApiError> exec_id_member(const json::object& m, std::string_view name) {
  auto s = required_string(m, name, kMaxIdMember);
  if (!s) return s;
  if (!protocol::ws::valid_exec_id(*s)) return bad(name, "expected 1..64 of [A-Za-z0-9._-]");
  return s;
}

Expected<std::string, ApiError> path_member(const json::object& m, std::string_view name) {
  auto path = required_string(m, name, kMaxPathLength);
  if (!path) return path;
  if (path->front() != '/') return bad(name, "expected an absolute path (starting with '/')");
  return path;
}

Expected<std::string, ApiError> user_member(const json::object& m) {
  auto user = optional_string(m, "user", protocol::kMaxUserName);
  if (!user) return Unexpected{user.error()};
  if (!*user) return std::string();
  if (!valid_user_name(**user))
    return bad("user", "expected an account name: letters, digits, '_', '-', '.' (1..256, not starting with '-')");
  return std::move(**user);
}

Expected<std::optional<std::uint32_t>, ApiError> mode_member(const json::object& m) {
  auto mode = optional_uint(m, "mode", 0, 07777);
  if (!mode) return Unexpected{mode.error()};
  if (!*mode) return std::optional<std::uint32_t>{};
  return std::optional<std::uint32_t>{static_cast<std::uint32_t>(**mode)};
}

}  // namespace

ParsedEnvelope parse_envelope(std::string_view text) {
  ParsedEnvelope out;
  json::parse_options options;
  options.max_depth = 16;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, options);
  if (ec || !v.is_object()) {
    out.error = ApiError{ErrorCode::kBadJson, ec ? "not JSON: " + ec.message() : "expected a JSON object", {}};
    return out;
  }
  auto& object = v.get_object();
  if (auto it = object.find("id"); it != object.end()) {
    const auto& id = it->value();
    bool usable = (id.is_string() && !id.get_string().empty() && id.get_string().size() <= kMaxRequestIdLength) ||
                  id.is_int64() || id.is_uint64();
    if (usable) out.envelope.id = id;
  }
  if (out.envelope.id.is_null()) {
    out.error = ApiError::bad_request("id", "expected a string of 1..128 characters or an integer");
    return out;
  }
  auto op = object.find("op");
  if (op == object.end() || !op->value().is_string()) {
    out.error = ApiError::bad_request("op", "expected the operation's name");
    return out;
  }
  out.envelope.op = std::string(op->value().get_string());
  object.erase("id");
  object.erase("op");
  out.envelope.members = std::move(object);
  return out;
}

// base64 (RFC 4648, with padding) to bytes; nothing when `text` is not that.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as data.
  std::size_t padding = text.size() >= 1 && text.back() == '=' ? (text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1) : 0;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

// A memory mount's starting files: {"relative/path": "text" | {"text": ..., "mode": N} | {"base64": ..., "mode": N}}.
Expected<std::vector<session::MountFileParams>, ApiError> mount_files(const json::value& v, const std::string& field) {
  std::vector<session::MountFileParams> out;
  if (!v.is_object()) return bad(field, "expected an object of relative path to contents");
  if (v.get_object().size() > kMaxMountFiles) return bad(field, "more than " + std::to_string(kMaxMountFiles) + " files");
  for (const auto& kv : v.get_object()) {
    session::MountFileParams file;
    file.path = std::string(kv.key());
    std::string where = field + "." + config::shown_in_message(file.path);
    if (kv.value().is_string()) {
      file.contents = std::string(kv.value().get_string());
    } else if (kv.value().is_object()) {
      const auto& o = kv.value().get_object();
      for (const auto& member_kv : o)
        if (member_kv.key() != "text" && member_kv.key() != "base64" && member_kv.key() != "mode")
          return bad(where, "unknown member '" + config::shown_in_message(member_kv.key()) + "'");
      auto text = optional_string(o, "text", kMaxMountFileBytes);
      if (!text) return Unexpected{ApiError::bad_request(where, text.error().message)};
      auto encoded = optional_string(o, "base64", kMaxMountFileBytes / 3 * 4 + 4);
      if (!encoded) return Unexpected{ApiError::bad_request(where, encoded.error().message)};
      if (text->has_value() == encoded->has_value()) return bad(where, "give exactly one of text and base64");
      if (*text) {
        file.contents = std::move(**text);
      } else {
        auto decoded = decode_base64(**encoded);
        if (!decoded) return bad(where, "base64: not base64 with padding");
        file.contents = std::move(*decoded);
      }
      auto mode = optional_uint(o, "mode", 0, 07777);
      if (!mode) return Unexpected{ApiError::bad_request(where, "mode: expected an integer 0..4095 (07777)")};
      if (*mode) file.mode = static_cast<std::uint32_t>(**mode);
    } else {
      return bad(where, "expected a string or {\"text\"|\"base64\": ..., \"mode\": N}");
    }
    out.push_back(std::move(file));
  }
  return out;
}

// "mounts": {"/guest/path": {"type": "host"|"memory", ...}, ...}. Only the
// shape is checked here; which paths and host directories are allowed is
// the service's to say (daemon/vfs/mount_rules.hpp).
Expected<std::vector<session::MountParams>, ApiError> optional_mounts(const json::object& m) {
  std::vector<session::MountParams> out;
  const json::value* v = member(m, "mounts");
  if (!v) return out;
  if (!v->is_object()) return bad("mounts", "expected an object of guest path to mount");
  if (v->get_object().size() > protocol::fs::kMaxMounts)
    return bad("mounts", "more than " + std::to_string(protocol::fs::kMaxMounts) + " mounts");
  for (const auto& kv : v->get_object()) {
    session::MountParams mount;
    mount.path = std::string(kv.key());
    std::string field = "mounts." + config::shown_in_message(mount.path);
    if (!kv.value().is_object()) return bad(field, "expected an object with a type");
    const auto& o = kv.value().get_object();
    for (const auto& member_kv : o) {
      auto k = member_kv.key();
      if (k != "type" && k != "path" && k != "read_only" && k != "files" && k != "size_mib")
        return bad(field, "unknown member '" + config::shown_in_message(k) + "'");
    }
    auto type = optional_string(o, "type", 16);
    if (!type || !*type) return bad(field + ".type", "expected \"host\" or \"memory\"");
    auto read_only = optional_bool(o, "read_only", false);
    if (!read_only) return Unexpected{ApiError::bad_request(field + ".read_only", read_only.error().message)};
    mount.read_only = *read_only;
    if (**type == "host") {
      mount.type = session::MountType::kHost;
      if (member(o, "files") || member(o, "size_mib")) return bad(field, "files and size_mib are for memory mounts");
      auto path = optional_string(o, "path", 4095);
      if (!path || !*path || (*path)->empty())
        return bad(field + ".path", "expected the host directory to serve (an absolute path)");
      mount.host_path = std::move(**path);
    } else if (**type == "memory") {
      mount.type = session::MountType::kMemory;
      if (member(o, "path")) return bad(field + ".path", "path is for host mounts");
      if (const json::value* files = member(o, "files")) {
        auto parsed = mount_files(*files, field + ".files");
        if (!parsed) return Unexpected{parsed.error()};
        mount.files = std::move(*parsed);
      }
      auto size = optional_uint(o, "size_mib", 1, kMaxMemoryMountMib);
      if (!size) return Unexpected{ApiError::bad_request(field + ".size_mib", size.error().message)};
      if (*size) mount.size_mib = static_cast<std::uint32_t>(**size);
    } else {
      return bad(field + ".type", "expected \"host\" or \"memory\"");
    }
    out.push_back(std::move(mount));
  }
  return out;
}

Expected<std::optional<session::NetworkChoice>, ApiError> parse_network_choice(const json::object& m) {
  auto egress = optional_string(m, "egress", 32);
  if (!egress) return Unexpected{egress.error()};
  const json::value* network = member(m, "network");
  if (*egress && network) return bad("network", "give \"network\" or \"egress\", not both");
  if (*egress) {
    auto mode = net::kEgressModeNames.parse(**egress);
    if (!mode) return bad("egress", "expected \"deny-all\" or \"allow-all\"");
    return std::optional<session::NetworkChoice>(session::NetworkChoice{*mode, {}});
  }
  if (!network) return std::optional<session::NetworkChoice>();
  auto rules = policy::policy_from_json(*network);
  if (!rules) {
    const policy::PolicyError& e = rules.error();
    return bad(e.path.empty() ? std::string("network") : "network." + e.path, e.message);
  }
  return std::optional<session::NetworkChoice>(session::NetworkChoice{std::nullopt, std::move(*rules)});
}

Expected<session::CreateSandboxParams, ApiError> parse_create_sandbox(const json::object& m) {
  session::CreateSandboxParams p;
  auto image = optional_string(m, "image", 64);
  if (!image) return Unexpected{image.error()};
  p.image = *image;
  auto cpus = optional_uint(m, "cpus", 1, 64);
  if (!cpus) return Unexpected{cpus.error()};
  if (*cpus) p.cpus = static_cast<unsigned>(**cpus);
  auto memory = optional_uint(m, "memory_mib", 64, 1u << 20);
  if (!memory) return Unexpected{memory.error()};
  if (*memory) p.memory_mib = static_cast<unsigned>(**memory);
  auto disk = optional_uint(m, "disk_mib", 16, 1u << 20);
  if (!disk) return Unexpected{disk.error()};
  if (*disk) p.disk_mib = static_cast<unsigned>(**disk);
  auto backing = optional_string(m, "disk_backing", 16);
  if (!backing) return Unexpected{backing.error()};
  if (*backing) {
    auto parsed = session::kDiskBackingNames.parse(**backing);
    if (!parsed) return bad("disk_backing", "expected \"memory\" or \"file\"");
    p.disk_backing = *parsed;
  }
  auto env = optional_env(m, "env");
  if (!env) return Unexpected{env.error()};
  p.env = std::move(*env);
  auto labels = optional_labels(m, "labels");
  if (!labels) return Unexpected{labels.error()};
  p.labels = std::move(*labels);
  constexpr std::uint64_t kYear = 366ull * 24 * 3600;
  auto lifetime = optional_uint(m, "lifetime_s", 0, kYear);
  if (!lifetime) return Unexpected{lifetime.error()};
  if (*lifetime) p.lifetime_s = static_cast<std::uint32_t>(**lifetime);
  auto idle = optional_uint(m, "idle_timeout_s", 0, kYear);
  if (!idle) return Unexpected{idle.error()};
  if (*idle) p.idle_timeout_s = static_cast<std::uint32_t>(**idle);
  auto network = parse_network_choice(m);
  if (!network) return Unexpected{network.error()};
  p.network = std::move(*network);
  auto key = optional_string(m, "key", kMaxRequestIdLength);
  if (!key) return Unexpected{key.error()};
  if (*key && (*key)->empty()) return bad("key", "must not be empty");
  p.key = *key;
  auto mounts = optional_mounts(m);
  if (!mounts) return Unexpected{mounts.error()};
  p.mounts = std::move(*mounts);
  return p;
}

Expected<session::ExecStartParams, ApiError> parse_exec_start(const json::object& m) {
  session::ExecStartParams p;
  auto sandbox = parse_sandbox_id(m);
  if (!sandbox) return Unexpected{sandbox.error()};
  p.sandbox = std::move(*sandbox);
  if (member(m, "exec")) {
    auto id = exec_id_member(m, "exec");
    if (!id) return Unexpected{id.error()};
    p.exec_id = std::move(*id);
  }
  const json::value* argv = member(m, "argv");
  auto shell = optional_string(m, "shell");
  if (!shell) return Unexpected{shell.error()};
  if ((argv != nullptr) == shell->has_value()) return bad("argv", "give exactly one of argv and shell");
  if (argv) {
    if (!argv->is_array() || argv->get_array().empty()) return bad("argv", "expected a non-empty array of strings");
    if (argv->get_array().size() > kMaxArgs) return bad("argv", "more than 4096 arguments");
    for (const auto& a : argv->get_array()) {
      if (!a.is_string()) return bad("argv", "expected a non-empty array of strings");
      if (a.get_string().find('\0') != json::string::npos) return bad("argv", "contains a NUL character");
      p.argv.emplace_back(a.get_string());
    }
    if (p.argv.front().empty()) return bad("argv", "argv[0] must not be empty");
  } else {
    p.argv = {"/bin/sh", "-c", **shell};
  }
  auto env = optional_env(m, "env");
  if (!env) return Unexpected{env.error()};
  p.env = std::move(*env);
  auto cwd = optional_string(m, "cwd", 4096);
  if (!cwd) return Unexpected{cwd.error()};
  if (*cwd) p.cwd = **cwd;
  auto user = optional_string(m, "user", protocol::kMaxUserName);
  if (!user) return Unexpected{user.error()};
  if (*user) {
    if (!valid_user_name(**user)) return bad("user", "expected an account name: letters, digits, '_', '-', '.' (1..256, not starting with '-')");
    p.user = **user;
  }
  auto timeout = optional_uint(m, "timeout_ms", 0, 366ull * 24 * 3600 * 1000);
  if (!timeout) return Unexpected{timeout.error()};
  if (*timeout) p.timeout_ms = **timeout;
  auto stdin_open = optional_bool(m, "stdin", false);
  if (!stdin_open) return Unexpected{stdin_open.error()};
  p.stdin_open = *stdin_open;
  if (const json::value* pty = member(m, "pty")) {
    if (!pty->is_object()) return bad("pty", "expected an object {cols, rows, term}");
    session::TerminalParams t;
    auto cols = optional_uint(pty->get_object(), "cols", 1, 4096);
    if (!cols) return bad("pty.cols", "expected an integer 1..4096");
    auto rows = optional_uint(pty->get_object(), "rows", 1, 4096);
    if (!rows) return bad("pty.rows", "expected an integer 1..4096");
    auto term = optional_string(pty->get_object(), "term", 64);
    if (!term) return bad("pty.term", "expected a string of at most 64 characters");
    if (*cols) t.cols = static_cast<std::uint16_t>(**cols);
    if (*rows) t.rows = static_cast<std::uint16_t>(**rows);
    if (*term && !(*term)->empty()) t.term = **term;
    p.pty = t;
  }
  return p;
}

Expected<AttachParams, ApiError> parse_attach(const json::object& m) {
  AttachParams p;
  auto id = parse_exec_id(m);
  if (!id) return Unexpected{id.error()};
  p.exec_id = std::move(*id);
  auto after = optional_uint(m, "after_seq", 0, std::numeric_limits<std::int64_t>::max());
  if (!after) return Unexpected{after.error()};
  if (*after) p.after_seq = **after;
  auto read_only = optional_bool(m, "read_only", false);
  if (!read_only) return Unexpected{read_only.error()};
  p.read_only = *read_only;
  return p;
}

Expected<ResizeParams, ApiError> parse_resize(const json::object& m) {
  ResizeParams p;
  auto id = parse_exec_id(m);
  if (!id) return Unexpected{id.error()};
  p.exec_id = std::move(*id);
  auto cols = optional_uint(m, "cols", 1, 4096);
  if (!cols) return Unexpected{cols.error()};
  auto rows = optional_uint(m, "rows", 1, 4096);
  if (!rows) return Unexpected{rows.error()};
  if (!*cols) return bad("cols", "required");
  if (!*rows) return bad("rows", "required");
  p.cols = static_cast<std::uint16_t>(**cols);
  p.rows = static_cast<std::uint16_t>(**rows);
  return p;
}

Expected<SignalParams, ApiError> parse_signal(const json::object& m) {
  SignalParams p;
  auto id = parse_exec_id(m);
  if (!id) return Unexpected{id.error()};
  p.exec_id = std::move(*id);
  const json::value* v = member(m, "signal");
  if (!v) return bad("signal", "required");
  auto signo = signal_number(*v);
  if (!signo) return bad("signal", "expected a signal name (INT, TERM, ...) or a number 1..64");
  p.signo = *signo;
  return p;
}

Expected<std::string, ApiError> parse_sandbox_id(const json::object& m) {
  return required_string(m, "sandbox", kMaxIdMember);
}

Expected<std::string, ApiError> parse_image_name(const json::object& m) { return required_string(m, "image", 64); }

Expected<std::string, ApiError> parse_exec_id(const json::object& m) { return exec_id_member(m, "exec"); }

Expected<std::optional<std::string>, ApiError> parse_optional_sandbox_id(const json::object& m) {
  return optional_string(m, "sandbox", kMaxIdMember);
}

Expected<session::Labels, ApiError> parse_label_filter(const json::object& m) { return optional_labels(m, "labels"); }

Expected<int, ApiError> parse_hello_version(const json::object& m) {
  auto v = optional_uint(m, "protocol", 0, 1u << 30);
  if (!v) return Unexpected{v.error()};
  if (!*v) return bad("protocol", "required");
  return static_cast<int>(**v);
}

std::optional<int> signal_number(const json::value& v) {
  if (v.is_int64() || v.is_uint64()) {
    auto n = v.is_int64() ? v.get_int64() : static_cast<std::int64_t>(std::min<std::uint64_t>(v.get_uint64(), 1000));
    if (n >= 1 && n <= 64) return static_cast<int>(n);
    return std::nullopt;
  }
  if (!v.is_string()) return std::nullopt;
  std::string_view name = v.get_string();
  if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
  static constexpr std::array<std::pair<std::string_view, int>, 10> kNames{{
      {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
      {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"WINCH", SIGWINCH},
  }};
  for (const auto& [n, signo] : kNames) {
    if (n == name) return signo;
  }
  return std::nullopt;
}

}  // namespace sandboxd::api

namespace sandboxd::api {

Expected<FileOpRequest, ApiError> parse_file_op(const json::object& m, session::FileOpKind kind) {
  using K = session::FileOpKind;
  FileOpRequest r;
  auto sandbox = parse_sandbox_id(m);
  if (!sandbox) return Unexpected{sandbox.error()};
  r.sandbox = std::move(*sandbox);
  r.params.kind = kind;
  auto path = path_member(m, kind == K::kRename ? "from" : "path");
  if (!path) return Unexpected{path.error()};
  r.params.path = std::move(*path);
  auto user = user_member(m);
  if (!user) return Unexpected{user.error()};
  r.params.user = std::move(*user);
  if (kind == K::kRename) {
    auto to = path_member(m, "to");
    if (!to) return Unexpected{to.error()};
    r.params.to = std::move(*to);
    auto overwrite = optional_bool(m, "overwrite", false);
    if (!overwrite) return Unexpected{overwrite.error()};
    r.params.overwrite = *overwrite;
  }
  if (kind == K::kMkdir || kind == K::kChmod) {
    auto mode = mode_member(m);
    if (!mode) return Unexpected{mode.error()};
    if (kind == K::kChmod && !*mode) return bad("mode", "required");
    r.params.mode = *mode;
  }
  if (kind == K::kMkdir) {
    auto parents = optional_bool(m, "parents", false);
    if (!parents) return Unexpected{parents.error()};
    r.params.parents = *parents;
  }
  if (kind == K::kRemove) {
    auto recursive = optional_bool(m, "recursive", false);
    if (!recursive) return Unexpected{recursive.error()};
    r.params.recursive = *recursive;
  }
  if (kind == K::kList) {
    auto limit = optional_uint(m, "limit", 1, session::kMaxListLimit);
    if (!limit) return Unexpected{limit.error()};
    if (*limit) r.params.limit = static_cast<std::size_t>(**limit);
  }
  return r;
}

Expected<std::string, ApiError> parse_transfer_id(const json::object& m) { return exec_id_member(m, "transfer"); }

namespace {
// What file.read and file.write both name: the sandbox, the transfer, the
// path and the user.
struct TransferHead {
  std::string sandbox, transfer, path, user;
};
Expected<TransferHead, ApiError> parse_transfer_head(const json::object& m) {
  TransferHead h;
  auto sandbox = parse_sandbox_id(m);
  if (!sandbox) return Unexpected{sandbox.error()};
  h.sandbox = std::move(*sandbox);
  auto transfer = parse_transfer_id(m);
  if (!transfer) return Unexpected{transfer.error()};
  h.transfer = std::move(*transfer);
  auto path = path_member(m, "path");
  if (!path) return Unexpected{path.error()};
  h.path = std::move(*path);
  auto user = user_member(m);
  if (!user) return Unexpected{user.error()};
  h.user = std::move(*user);
  return h;
}
}  // namespace

Expected<FileReadRequest, ApiError> parse_file_read(const json::object& m) {
  auto head = parse_transfer_head(m);
  if (!head) return Unexpected{head.error()};
  return FileReadRequest{std::move(head->sandbox), std::move(head->transfer), std::move(head->path),
                         std::move(head->user)};
}

Expected<FileWriteRequest, ApiError> parse_file_write(const json::object& m) {
  auto head = parse_transfer_head(m);
  if (!head) return Unexpected{head.error()};
  FileWriteRequest r;
  r.sandbox = std::move(head->sandbox);
  r.transfer = std::move(head->transfer);
  r.params.path = std::move(head->path);
  r.params.user = std::move(head->user);
  auto size = optional_uint(m, "size", 0, kMaxFileSize);
  if (!size) return Unexpected{size.error()};
  if (!*size) return bad("size", "required: the number of bytes the upload frames will carry");
  r.params.size = **size;
  auto mode = mode_member(m);
  if (!mode) return Unexpected{mode.error()};
  r.params.mode = *mode;
  return r;
}

}  // namespace sandboxd::api
