#include "daemon/service/auth_token.hpp"

#include <pwd.h>
#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "daemon/service/private_files.hpp"

namespace sandboxd::service {
namespace fs = std::filesystem;

namespace {

// Room for the longest acceptable token and its line end; anything larger is
// not a token file.
constexpr std::size_t kMaxTokenFileBytes = 4096;
constexpr std::string_view kBlanks = " \t";

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// nullopt when the file does not exist.
Expected<std::optional<std::string>, std::string> read_token_file(const fs::path& file) {
  auto content = read_small_file(file, kMaxTokenFileBytes);
  if (!content) {
    if (content.error().code == ENOENT) return std::optional<std::string>();
    return Unexpected{"token file: " + content.error().message};
  }
  const auto& info = content->info;
  if (info.st_uid != ::geteuid()) {
    return Unexpected{"token file " + file.string() + " belongs to uid " + std::to_string(info.st_uid) +
                      ", not to this user (uid " + std::to_string(::geteuid()) + "), who could not keep it secret"};
  }
  if ((info.st_mode & 077) != 0) {
    return Unexpected{"token file " + file.string() + " may be read or written by group or other (mode " +
                      octal_mode(info.st_mode) + "); make it private with 'chmod 600 " + file.string() + "'"};
  }
  std::string token = std::move(content->bytes);
  token.erase(token.find_last_not_of(" \t\r\n") + 1);
  if (token.size() < kMinTokenLength) {
    return Unexpected{"token file " + file.string() + " holds fewer than " + std::to_string(kMinTokenLength) +
                      " characters"};
  }
  if (!is_acceptable_token(token)) {
    return Unexpected{"token file " + file.string() +
                      " holds blanks or characters that are not printable ASCII; a token is one word"};
  }
  return std::optional<std::string>(std::move(token));
}

Expected<std::string, std::string> random_token() {
  std::array<unsigned char, 32> bytes{};
  std::size_t have = 0;
  while (have < bytes.size()) {
    ssize_t n = ::getrandom(bytes.data() + have, bytes.size() - have, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unexpected{std::string("getrandom: ") + std::strerror(errno)};
    }
    have += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  return token;
}

struct OriginParts {
  std::string_view scheme;
  std::string_view host;
  unsigned port = 0;  // the one given, else the scheme's default, else 0
};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

unsigned default_port(std::string_view scheme) {
  if (iequals(scheme, "http") || iequals(scheme, "ws")) return 80;
  if (iequals(scheme, "https") || iequals(scheme, "wss")) return 443;
  return 0;
}

std::optional<OriginParts> parse_origin(std::string_view s) {
  OriginParts out;
  auto sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  out.scheme = s.substr(0, sep);
  if (!is_alpha(out.scheme[0])) return std::nullopt;
  for (char c : out.scheme)
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return std::nullopt;

  std::string_view rest = s.substr(sep + 3);
  std::string_view after;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close < 2) return std::nullopt;
    for (char c : rest.substr(1, close - 1))
      if (!is_hex(c) && c != ':' && c != '.') return std::nullopt;
    out.host = rest.substr(0, close + 1);
    after = rest.substr(close + 1);
  } else {
    auto colon = rest.find(':');
    out.host = rest.substr(0, colon);
    if (out.host.empty() || out.host.size() > 253) return std::nullopt;
    for (char c : out.host)
      if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_') return std::nullopt;
    after = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
  }

  if (after.empty()) {
    out.port = default_port(out.scheme);
    return out;
  }
  if (after[0] != ':' || after.size() < 2 || after.size() > 6) return std::nullopt;
  unsigned port = 0;
  for (char c : after.substr(1)) {
    if (!is_digit(c)) return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  out.port = port;
  return out;
}

}  // namespace

bool is_acceptable_token(std::string_view token) {
  if (token.size() < kMinTokenLength || token.size() > kMaxTokenLength) return false;
  for (char c : token)
    if (c < '!' || c > '~') return false;
  return true;
}

Expected<std::string, std::string> load_or_create_token(const fs::path& file, bool* created) {
  if (created) *created = false;
  if (file.empty()) return Unexpected{std::string("no token file given")};
  // Another process may create the file between our look and our create;
  // then its token is the one to use, so look again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto existing = read_token_file(file);
    if (!existing) return Unexpected{existing.error()};
    if (*existing) return std::string(**existing);

    fs::path dir = file.parent_path();
    if (!dir.empty()) {
      if (auto made = make_private_dirs(dir); !made) return Unexpected{"token file: " + made.error()};
    }
    auto token = random_token();
    if (!token) return Unexpected{token.error()};
    auto won = create_file_exclusively(file, *token + "\n");
    if (!won) return Unexpected{"token file: " + won.error()};
    if (*won) {
      if (created) *created = true;
      return std::string(*token);
    }
  }
  return Unexpected{"token file " + file.string() + " keeps disappearing while it is being created"};
}

fs::path default_image_store() {
  fs::path token = default_token_file();
  return token.empty() ? fs::path() : token.parent_path() / "images";
}

fs::path default_disk_dir() {
  fs::path token = default_token_file();
  return token.empty() ? fs::path() : token.parent_path() / "disks";
}

fs::path default_token_file() {
  if (::geteuid() == 0) return "/var/lib/sandboxd/token";
  // The XDG spec has relative paths in its variables ignored.
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && xdg[0] == '/')
    return fs::path(xdg) / "sandboxd" / "token";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".local/state/sandboxd/token";
  // No fallback in a shared directory such as /tmp: whoever owns the
  // directory a token lives in can replace the token with one they know.
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_dir && *pw->pw_dir)
    return fs::path(pw->pw_dir) / ".local/state/sandboxd/token";
  return {};
}

bool token_matches(std::string_view presented, std::string_view expected) {
  if (expected.empty()) return false;
  // Every byte of `expected` is compared whatever the earlier ones gave, and
  // the accumulator is volatile so the compiler cannot stop at the first
  // difference. Only the lengths, which are not secret, decide the path.
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff = diff | static_cast<unsigned char>(p ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

std::optional<std::string_view> bearer_token(std::string_view header) {
  auto first = header.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return std::nullopt;
  header = header.substr(first, header.find_last_not_of(kBlanks) - first + 1);
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || !iequals(header.substr(0, kScheme.size()), kScheme)) return std::nullopt;
  std::string_view rest = header.substr(kScheme.size());
  if (rest[0] != ' ' && rest[0] != '\t') return std::nullopt;
  rest = rest.substr(rest.find_first_not_of(kBlanks));
  if (rest.find_first_of(kBlanks) != std::string_view::npos) return std::nullopt;
  return rest;
}

bool is_origin(std::string_view origin) { return parse_origin(origin).has_value(); }

bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) {
  auto presented = parse_origin(origin);
  for (const auto& entry : allowed) {
    if (entry == "*") return true;
    if (!presented) continue;
    auto a = parse_origin(entry);
    if (a && iequals(a->scheme, presented->scheme) && iequals(a->host, presented->host) && a->port == presented->port)
      return true;
  }
  return false;
}

}  // namespace sandboxd::service
