#include "daemon/service/daemon_config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <optional>

#include "daemon/service/auth_token.hpp"
#include "daemon/service/private_files.hpp"

namespace sandboxd::service {

namespace {

// A value's problem, without the "line N: key: " the caller puts before it.
using Check = Expected<void, std::string>;

constexpr std::string_view kBlanks = " \t";
constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;
constexpr unsigned kMaxDuration = 365 * 24 * 3600;  // 8760h
// The size of sockaddr_un::sun_path less its terminating NUL.
constexpr std::size_t kMaxUnixSocketPath = 107;

Check fail(std::string message) { return Unexpected{std::move(message)}; }

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kBlanks) - first + 1);
}

// Text from the file, fit for an error message: at most 64 characters, and
// anything unprintable shown as \xNN so a message never carries a control
// sequence to a terminal or a log.
std::string shown(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

// Plain decimal digits: no sign, no blanks, no base prefix.
std::optional<std::uint64_t> parse_digits(std::string_view s) {
  // 19 digits always fit in 64 bits.
  if (s.empty() || s.size() > 19) return std::nullopt;
  for (char c : s)
    if (!is_digit(c)) return std::nullopt;
  std::uint64_t n = 0;
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

std::string format_size(std::uint64_t n) {
  if (n >= kGiB && n % kGiB == 0) return std::to_string(n / kGiB) + "G";
  if (n >= kMiB && n % kMiB == 0) return std::to_string(n / kMiB) + "M";
  if (n >= kKiB && n % kKiB == 0) return std::to_string(n / kKiB) + "K";
  return std::to_string(n);
}

std::string format_duration(unsigned s) {
  if (s >= 3600 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s >= 60 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

template <class T>
Check set_integer(T& out, std::string_view v, unsigned lo, unsigned hi) {
  auto n = parse_digits(v);
  if (!n || *n < lo || *n > hi) return fail("expected an integer " + std::to_string(lo) + ".." + std::to_string(hi));
  out = static_cast<T>(*n);
  return {};
}

template <class T>
Check set_size(T& out, std::string_view v, std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t unit = 1;
  if (!v.empty()) {
    char suffix = v.back();
    if (suffix == 'K' || suffix == 'k') unit = kKiB;
    if (suffix == 'M' || suffix == 'm') unit = kMiB;
    if (suffix == 'G' || suffix == 'g') unit = kGiB;
    if (unit != 1) v.remove_suffix(1);
  }
  auto n = parse_digits(v);
  if (!n || *n > hi / unit || *n * unit < lo) {
    return fail("expected a size " + format_size(lo) + ".." + format_size(hi) +
                " (bytes, or a number with a K, M or G suffix)");
  }
  out = static_cast<T>(*n * unit);
  return {};
}

Check set_duration(unsigned& out, std::string_view v) {
  unsigned unit = 1;
  if (!v.empty() && (v.back() == 's' || v.back() == 'm' || v.back() == 'h')) {
    unit = v.back() == 'h' ? 3600 : v.back() == 'm' ? 60 : 1;
    v.remove_suffix(1);
  }
  auto n = parse_digits(v);
  if (!n || *n > kMaxDuration / unit) {
    return fail("expected a duration 0.." + format_duration(kMaxDuration) +
                " (seconds, or a number with an s, m or h suffix)");
  }
  out = static_cast<unsigned>(*n * unit);
  return {};
}

Check set_choice(std::string& out, std::string_view v, std::initializer_list<std::string_view> choices) {
  for (auto c : choices) {
    if (v == c) {
      out = std::string(v);
      return {};
    }
  }
  std::string list;
  std::size_t i = 0;
  for (auto c : choices) {
    if (i > 0) list += (i + 1 == choices.size()) ? " or " : ", ";
    list += c;
    ++i;
  }
  return fail("expected " + list);
}

// Relative paths are refused: the daemon's working directory is no place to
// resolve them against.
Check set_path(std::filesystem::path& out, std::string_view v) {
  if (!v.empty() && v[0] != '/') return fail("expected an absolute path, or nothing for the default");
  out = std::filesystem::path(v);
  return {};
}

Check set_socket_path(std::string& out, std::string_view v) {
  if (!v.empty() && v != "none" && (v[0] != '/' || v.size() > kMaxUnixSocketPath)) {
    return fail("expected an absolute path of at most " + std::to_string(kMaxUnixSocketPath) +
                " bytes, none, or nothing for the default");
  }
  out = std::string(v);
  return {};
}

Check check_port(std::string_view port) {
  auto n = parse_digits(port);
  if (!n || *n > 65535) return fail("expected a port 0..65535 after the last ':'");
  return {};
}

Check set_listen(std::string& out, std::string_view v) {
  if (v.empty()) {
    out.clear();
    return {};
  }
  const std::string usage = "expected host:port or [IPv6 address]:port, or nothing to disable TCP";
  if (v[0] == '[') {
    auto close = v.find(']');
    if (close == std::string_view::npos) return fail(usage);
    std::string host(v.substr(1, close - 1));
    in6_addr a6{};
    if (::inet_pton(AF_INET6, host.c_str(), &a6) != 1) return fail("'" + shown(host) + "' is not an IPv6 address");
    std::string_view rest = v.substr(close + 1);
    if (rest.empty() || rest[0] != ':') return fail(usage);
    if (auto port = check_port(rest.substr(1)); !port) return port;
  } else {
    auto colon = v.rfind(':');
    if (colon == std::string_view::npos) return fail(usage);
    std::string host(v.substr(0, colon));
    if (host.find(':') != std::string::npos) return fail("an IPv6 address goes in brackets, as in [::1]:7070");
    if (host.empty() || host.size() > 253) return fail(usage);
    bool numeric = true;
    for (char c : host) {
      if (!is_alnum(c) && c != '-' && c != '.') return fail("'" + shown(host) + "' is not a host name or address");
      if (!is_digit(c) && c != '.') numeric = false;
    }
    in_addr a4{};
    if (numeric && ::inet_pton(AF_INET, host.c_str(), &a4) != 1)
      return fail("'" + shown(host) + "' is not an IPv4 address");
    if (auto port = check_port(v.substr(colon + 1)); !port) return port;
  }
  out = std::string(v);
  return {};
}

// The value is never repeated in these messages: it is a secret.
Check set_token(std::string& out, std::string_view v) {
  if (!v.empty() && v.size() < kMinTokenLength)
    return fail("expected at least " + std::to_string(kMinTokenLength) + " characters");
  if (!v.empty() && !is_acceptable_token(v)) {
    return fail("expected " + std::to_string(kMinTokenLength) + " to " + std::to_string(kMaxTokenLength) +
                " printable ASCII characters without blanks");
  }
  out = std::string(v);
  return {};
}

Check set_origins(std::vector<std::string>& out, std::string_view v) {
  std::vector<std::string> origins;
  while (!v.empty()) {
    auto comma = v.find(',');
    std::string_view item = trim(v.substr(0, comma));
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    if (item.empty()) continue;
    if (item != "*" && !is_origin(item))
      return fail("'" + shown(item) + "' is not an origin (scheme://host[:port], no path) or *");
    origins.emplace_back(item);
  }
  out = std::move(origins);
  return {};
}

// The image name becomes a directory name, so it is held to the same rule as
// the image finder's.
Check set_image(std::string& out, std::string_view v) {
  bool ok = !v.empty() && v.size() <= 64 && v != "." && v != "..";
  for (char c : v)
    if (!is_alnum(c) && c != '-' && c != '_' && c != '.') ok = false;
  if (!ok) return fail("expected an image name (letters, digits, '-', '_' and '.')");
  out = std::string(v);
  return {};
}

struct Key {
  std::string_view name;
  Check (*apply)(DaemonConfig&, std::string_view);
};

const std::array kKeys{
    Key{"listen", [](DaemonConfig& c, std::string_view v) { return set_listen(c.listen, v); }},
    Key{"socket_path", [](DaemonConfig& c, std::string_view v) { return set_socket_path(c.socket_path, v); }},
    Key{"runtime_dir", [](DaemonConfig& c, std::string_view v) { return set_path(c.runtime_dir, v); }},
    Key{"token_file", [](DaemonConfig& c, std::string_view v) { return set_path(c.token_file, v); }},
    Key{"token", [](DaemonConfig& c, std::string_view v) { return set_token(c.token, v); }},
    Key{"allowed_origins", [](DaemonConfig& c, std::string_view v) { return set_origins(c.allowed_origins, v); }},
    Key{"image", [](DaemonConfig& c, std::string_view v) { return set_image(c.image, v); }},
    Key{"pool_size", [](DaemonConfig& c, std::string_view v) { return set_integer(c.pool_size, v, 0, 64); }},
    Key{"default_cpus", [](DaemonConfig& c, std::string_view v) { return set_integer(c.default_cpus, v, 1, 64); }},
    Key{"default_memory_mib",
        [](DaemonConfig& c, std::string_view v) { return set_integer(c.default_memory_mib, v, 64, 65536); }},
    Key{"max_cpus", [](DaemonConfig& c, std::string_view v) { return set_integer(c.max_cpus, v, 1, 64); }},
    Key{"max_memory_mib",
        [](DaemonConfig& c, std::string_view v) { return set_integer(c.max_memory_mib, v, 64, 65536); }},
    Key{"max_sandboxes_per_token",
        [](DaemonConfig& c, std::string_view v) { return set_integer(c.max_sandboxes_per_token, v, 1, 10000); }},
    Key{"max_frame_bytes",
        [](DaemonConfig& c, std::string_view v) { return set_size(c.max_frame_bytes, v, kKiB, 64 * kMiB); }},
    Key{"max_pending_requests",
        [](DaemonConfig& c, std::string_view v) { return set_integer(c.max_pending_requests, v, 1, 10000); }},
    Key{"exec_log_bytes",
        [](DaemonConfig& c, std::string_view v) { return set_size(c.exec_log_bytes, v, 64 * kKiB, kGiB); }},
    Key{"exec_retention_s", [](DaemonConfig& c, std::string_view v) { return set_duration(c.exec_retention_s, v); }},
    Key{"max_retained_execs",
        [](DaemonConfig& c, std::string_view v) { return set_integer(c.max_retained_execs, v, 0, 1000000); }},
    Key{"default_lifetime_s",
        [](DaemonConfig& c, std::string_view v) { return set_duration(c.default_lifetime_s, v); }},
    Key{"default_idle_timeout_s",
        [](DaemonConfig& c, std::string_view v) { return set_duration(c.default_idle_timeout_s, v); }},
    Key{"accelerator",
        [](DaemonConfig& c, std::string_view v) {
          return set_choice(c.accelerator, v, {"auto", "kvm", "tcg"});
        }},
    Key{"network",
        [](DaemonConfig& c, std::string_view v) {
          return set_choice(c.network, v, {"stack", "slirp", "none"});
        }},
    Key{"egress",
        [](DaemonConfig& c, std::string_view v) {
          return set_choice(c.egress, v, {"deny-all", "allow-all"});
        }},
    Key{"log_level",
        [](DaemonConfig& c, std::string_view v) {
          return set_choice(c.log_level, v, {"trace", "debug", "info", "warn", "error", "off"});
        }},
};

// The line each key was set on; 0 for keys the text leaves alone.
using SetOn = std::array<std::size_t, kKeys.size()>;

std::size_t key_index(std::string_view name) {
  for (std::size_t i = 0; i < kKeys.size(); ++i)
    if (kKeys[i].name == name) return i;
  return kKeys.size();
}

// The value after '=': quoted, or up to a comment, blanks trimmed.
Expected<std::string, std::string> parse_value(std::string_view raw) {
  std::string out;
  std::string_view trimmed = raw.substr(std::min(raw.size(), raw.find_first_not_of(kBlanks)));
  if (!trimmed.empty() && trimmed[0] == '"') {
    std::size_t i = 1;
    for (;; ++i) {
      if (i >= trimmed.size()) return Unexpected{std::string("the quoted value has no closing quote")};
      char c = trimmed[i];
      if (c == '"') break;
      if (c == '\\') {
        if (i + 1 < trimmed.size() && (trimmed[i + 1] == '"' || trimmed[i + 1] == '\\')) {
          out += trimmed[++i];
          continue;
        }
        return Unexpected{std::string("in quotes a backslash may only come before \" or \\")};
      }
      out += c;
    }
    std::string_view after = trim(trimmed.substr(i + 1));
    if (!after.empty() && after[0] != '#') return Unexpected{std::string("unexpected text after the closing quote")};
  } else {
    std::size_t end = raw.size();
    for (std::size_t i = 1; i < raw.size(); ++i) {
      if (raw[i] == '#' && is_blank(raw[i - 1])) {
        end = i;
        break;
      }
    }
    out = std::string(trim(raw.substr(0, end)));
  }
  for (char c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return Unexpected{std::string("control characters are not allowed in values")};
  }
  return out;
}

std::string at_line(std::size_t line) { return "line " + std::to_string(line) + ": "; }

// A sandbox's default must be one it could ask for. The message names the
// line of whichever of the two keys the text set.
Check check_default_within_max(const SetOn& set_on, std::string_view def_key, unsigned def, std::string_view max_key,
                               unsigned max) {
  if (def <= max) return {};
  std::size_t def_line = set_on[key_index(def_key)];
  std::size_t max_line = set_on[key_index(max_key)];
  const std::string d(def_key);
  const std::string m(max_key);
  if (def_line != 0) {
    return fail(at_line(def_line) + d + ": " + std::to_string(def) + " is more than " + m + " (" + std::to_string(max) +
                ")");
  }
  if (max_line != 0) {
    return fail(at_line(max_line) + m + ": " + std::to_string(max) + " is less than " + d + " (" + std::to_string(def) +
                ")");
  }
  return fail(d + " (" + std::to_string(def) + ") is more than " + m + " (" + std::to_string(max) + ")");
}

Expected<DaemonConfig, std::string> parse(std::string_view text, DaemonConfig config, SetOn& set_on) {
  set_on.fill(0);
  std::size_t number = 0;
  std::size_t pos = 0;
  for (bool more = true; more;) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    more = nl != std::string_view::npos;
    if (more) pos = nl + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    std::string_view content = trim(line);
    if (content.empty() || content[0] == '#') continue;
    auto eq = content.find('=');
    if (eq == std::string_view::npos) return Unexpected{at_line(number) + "expected key = value"};
    std::string_view key = trim(content.substr(0, eq));
    if (key.empty()) return Unexpected{at_line(number) + "expected a key before '='"};
    std::size_t index = key_index(key);
    if (index == kKeys.size()) return Unexpected{at_line(number) + "unknown key '" + shown(key) + "'"};
    const std::string name(key);
    if (set_on[index] != 0) {
      return Unexpected{at_line(number) + "duplicate key '" + name + "' (first set on line " +
                        std::to_string(set_on[index]) + ")"};
    }
    set_on[index] = number;
    auto value = parse_value(content.substr(eq + 1));
    if (!value) return Unexpected{at_line(number) + name + ": " + value.error()};
    if (auto applied = kKeys[index].apply(config, *value); !applied)
      return Unexpected{at_line(number) + name + ": " + applied.error()};
  }
  if (auto c = check_default_within_max(set_on, "default_cpus", config.default_cpus, "max_cpus", config.max_cpus); !c)
    return Unexpected{c.error()};
  if (auto c = check_default_within_max(set_on, "default_memory_mib", config.default_memory_mib, "max_memory_mib",
                                        config.max_memory_mib);
      !c)
    return Unexpected{c.error()};
  return config;
}

}  // namespace

Expected<DaemonConfig, std::string> parse_daemon_config(std::string_view text, DaemonConfig base) {
  SetOn set_on;
  return parse(text, std::move(base), set_on);
}

Expected<DaemonConfig, std::string> load_daemon_config(const std::filesystem::path& file, DaemonConfig base) {
  auto content = read_small_file(file, kMaxConfigFileBytes);
  if (!content) return Unexpected{"config file: " + content.error().message};
  SetOn set_on;
  auto config = parse(content->bytes, std::move(base), set_on);
  if (!config) return Unexpected{file.string() + ": " + config.error()};
  // A token in a file others may read is a token they know.
  if (set_on[key_index("token")] != 0 && !config->token.empty() && (content->info.st_mode & 077) != 0) {
    return Unexpected{file.string() + ": line " + std::to_string(set_on[key_index("token")]) +
                      ": token: the file may be read by group or other; make it private with 'chmod 600 " +
                      file.string() + "', or use token_file"};
  }
  return config;
}

}  // namespace sandboxd::service
