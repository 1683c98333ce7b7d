#include "daemon/config/setting_values.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <optional>

#include "daemon/net/wire/address.hpp"
#include "daemon/net/wire/dns.hpp"
#include "daemon/service/auth_token.hpp"

namespace sandboxd::config {

namespace {

constexpr std::string_view kBlanks = " \t";
constexpr std::uint64_t kMaxDuration = 365 * 24 * 3600;  // 8760h
// The size of sockaddr_un::sun_path less its terminating NUL.
constexpr std::size_t kMaxUnixSocketPath = 107;

Unexpected<std::string> fail(std::string message) { return Unexpected{std::move(message)}; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kBlanks) - first + 1);
}

// The items of a comma-separated list, blanks trimmed, empty items skipped.
std::vector<std::string_view> comma_separated(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string comma_joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
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

std::string format_duration(std::uint64_t s) {
  if (s >= 3600 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s >= 60 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string as_is(const std::string& s) { return s; }

Expected<void, std::string> check_port(std::string_view port) {
  auto n = parse_digits(port);
  if (!n || *n > 65535) return fail("expected a port 0..65535 after the last ':'");
  return {};
}

Expected<void, std::string> check_listen(std::string_view v) {
  const std::string usage = "expected host:port or [IPv6 address]:port, or nothing to disable TCP";
  if (v[0] == '[') {
    auto close = v.find(']');
    if (close == std::string_view::npos) return fail(usage);
    std::string host(v.substr(1, close - 1));
    in6_addr a6{};
    if (::inet_pton(AF_INET6, host.c_str(), &a6) != 1)
      return fail("'" + shown_in_message(host) + "' is not an IPv6 address");
    std::string_view rest = v.substr(close + 1);
    if (rest.empty() || rest[0] != ':') return fail(usage);
    return check_port(rest.substr(1));
  }
  auto colon = v.rfind(':');
  if (colon == std::string_view::npos) return fail(usage);
  std::string host(v.substr(0, colon));
  if (host.find(':') != std::string::npos) return fail("an IPv6 address goes in brackets, as in [::1]:7070");
  if (host.empty() || host.size() > 253) return fail(usage);
  bool numeric = true;
  for (char c : host) {
    if (!is_alnum(c) && c != '-' && c != '.')
      return fail("'" + shown_in_message(host) + "' is not a host name or address");
    if (!is_digit(c) && c != '.') numeric = false;
  }
  in_addr a4{};
  if (numeric && ::inet_pton(AF_INET, host.c_str(), &a4) != 1)
    return fail("'" + shown_in_message(host) + "' is not an IPv4 address");
  return check_port(v.substr(colon + 1));
}

}  // namespace

std::string shown_in_message(std::string_view s) {
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

ValueKind<std::uint64_t> integer(std::uint64_t lo, std::uint64_t hi) {
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  return {[=](std::string_view text) -> Expected<std::uint64_t, std::string> {
            auto n = parse_digits(text);
            if (!n || *n < lo || *n > hi) return fail("expected an integer " + range);
            return *n;
          },
          [](const std::uint64_t& n) { return std::to_string(n); }, range};
}

ValueKind<std::uint64_t> size(std::uint64_t lo, std::uint64_t hi) {
  const std::string range = format_size(lo) + ".." + format_size(hi);
  return {[=](std::string_view text) -> Expected<std::uint64_t, std::string> {
            std::uint64_t unit = 1;
            if (!text.empty()) {
              char suffix = text.back();
              if (suffix == 'K' || suffix == 'k') unit = kKiB;
              if (suffix == 'M' || suffix == 'm') unit = kMiB;
              if (suffix == 'G' || suffix == 'g') unit = kGiB;
              if (unit != 1) text.remove_suffix(1);
            }
            auto n = parse_digits(text);
            if (!n || *n > hi / unit || *n * unit < lo)
              return fail("expected a size " + range + " (bytes, or a number with a K, M or G suffix)");
            return *n * unit;
          },
          format_size, "size " + range};
}

ValueKind<std::uint64_t> duration() {
  const std::string range = "0.." + format_duration(kMaxDuration);
  return {[=](std::string_view text) -> Expected<std::uint64_t, std::string> {
            std::uint64_t unit = 1;
            if (!text.empty() && (text.back() == 's' || text.back() == 'm' || text.back() == 'h')) {
              unit = text.back() == 'h' ? 3600 : text.back() == 'm' ? 60 : 1;
              text.remove_suffix(1);
            }
            auto n = parse_digits(text);
            if (!n || *n > kMaxDuration / unit)
              return fail("expected a duration " + range + " (seconds, or a number with an s, m or h suffix)");
            return *n * unit;
          },
          format_duration, "duration " + range};
}

ValueKind<std::string> listen_address() {
  return {[](std::string_view text) -> Expected<std::string, std::string> {
            if (!text.empty())
              if (auto ok = check_listen(text); !ok) return Unexpected{ok.error()};
            return std::string(text);
          },
          as_is, "host:port, [IPv6 address]:port, or empty"};
}

ValueKind<std::string> socket_path() {
  return {[](std::string_view text) -> Expected<std::string, std::string> {
            if (!text.empty() && text != "none" && (text[0] != '/' || text.size() > kMaxUnixSocketPath)) {
              return fail("expected an absolute path of at most " + std::to_string(kMaxUnixSocketPath) +
                          " bytes, none, or nothing for the default");
            }
            return std::string(text);
          },
          as_is, "absolute path of at most " + std::to_string(kMaxUnixSocketPath) + " bytes, none, or empty"};
}

ValueKind<std::filesystem::path> absolute_path() {
  return {[](std::string_view text) -> Expected<std::filesystem::path, std::string> {
            if (!text.empty() && text[0] != '/') return fail("expected an absolute path, or nothing for the default");
            return std::filesystem::path(text);
          },
          [](const std::filesystem::path& p) { return p.string(); }, "absolute path, or empty"};
}

ValueKind<std::vector<std::filesystem::path>> absolute_paths() {
  return {[](std::string_view text) -> Expected<std::vector<std::filesystem::path>, std::string> {
            std::vector<std::filesystem::path> out;
            for (std::string_view item : comma_separated(text)) {
              if (item[0] != '/') return fail("'" + shown_in_message(item) + "' is not an absolute path");
              std::filesystem::path path = std::filesystem::path(item).lexically_normal();
              for (const auto& part : path)
                if (part == "..") return fail("'" + shown_in_message(item) + "' has a .. component");
              std::string normal = path.string();
              if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
              out.emplace_back(normal);
            }
            return out;
          },
          [](const std::vector<std::filesystem::path>& list) {
            std::string out;
            for (const auto& path : list) out += (out.empty() ? "" : ", ") + path.string();
            return out;
          },
          "comma-separated absolute paths"};
}

// The value is never repeated in these messages, nor shown: it is a secret.
ValueKind<std::string> token() {
  return {[](std::string_view text) -> Expected<std::string, std::string> {
            if (!text.empty() && text.size() < service::kMinTokenLength)
              return fail("expected at least " + std::to_string(service::kMinTokenLength) + " characters");
            if (!text.empty() && !service::is_acceptable_token(text)) {
              return fail("expected " + std::to_string(service::kMinTokenLength) + " to " +
                          std::to_string(service::kMaxTokenLength) + " printable ASCII characters without blanks");
            }
            return std::string(text);
          },
          [](const std::string& t) { return t.empty() ? std::string() : std::string("(secret)"); },
          std::to_string(service::kMinTokenLength) + " to " + std::to_string(service::kMaxTokenLength) +
              " printable ASCII characters without blanks, or empty"};
}

ValueKind<std::vector<std::string>> origins() {
  return {[](std::string_view text) -> Expected<std::vector<std::string>, std::string> {
            std::vector<std::string> out;
            for (std::string_view item : comma_separated(text)) {
              if (item != "*" && !service::is_origin(item))
                return fail("'" + shown_in_message(item) + "' is not an origin (scheme://host[:port], no path) or *");
              out.emplace_back(item);
            }
            return out;
          },
          comma_joined,
          "comma-separated scheme://host[:port], or *"};
}

ValueKind<std::vector<std::string>> host_aliases() {
  return {[](std::string_view text) -> Expected<std::vector<std::string>, std::string> {
            std::vector<std::string> out;
            for (std::string_view item : comma_separated(text)) {
              auto eq = item.find('=');
              std::string name(item.substr(0, eq == std::string_view::npos ? 0 : eq));
              for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
              if (!name.empty() && name.back() == '.') name.pop_back();
              if (eq == std::string_view::npos || name.empty() || !net::wire::is_valid_dns_name(name) ||
                  !net::wire::Ipv4Address::parse(item.substr(eq + 1)))
                return fail("'" + shown_in_message(item) + "' is not NAME=IP (a host name and an IPv4 address)");
              out.emplace_back(item);
            }
            if (out.size() > 64) return fail("at most 64 host aliases");
            return out;
          },
          comma_joined,
          "comma-separated NAME=IP"};
}

ValueKind<std::string> image_name() {
  return {[](std::string_view text) -> Expected<std::string, std::string> {
            bool ok = !text.empty() && text.size() <= 64 && text != "." && text != "..";
            for (char c : text)
              if (!is_alnum(c) && c != '-' && c != '_' && c != '.') ok = false;
            if (!ok) return fail("expected an image name (letters, digits, '-', '_' and '.')");
            return std::string(text);
          },
          as_is, "letters, digits, '-', '_' and '.', at most 64"};
}

}  // namespace sandboxd::config
