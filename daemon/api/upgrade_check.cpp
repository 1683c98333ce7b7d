#include "daemon/api/upgrade_check.hpp"

#include <openssl/sha.h>

#include "daemon/service/auth_token.hpp"

namespace sandboxd::api {

std::string owner_of_token(std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string out = "tok-";
  for (int i = 0; i < 8; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

UpgradeDecision refuse(unsigned status, std::string reason) {
  UpgradeDecision d;
  d.status = status;
  d.reason = std::move(reason);
  return d;
}
}  // namespace

std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    if (eq == std::string_view::npos) return std::string{};
    return percent_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

UpgradeDecision decide_upgrade(const UpgradeRequest& request, const std::vector<std::string>& tokens,
                               const std::vector<std::string>& allowed_origins) {
  std::string_view path = request.target.substr(0, request.target.find('?'));
  bool health = path == "/v1/health";
  if (path != "/v1" && !health) return refuse(404, "not_found");
  if (request.method != "GET") return refuse(405, "method_not_allowed");
  // The origin is checked before the token: a page from a foreign origin
  // learns nothing about whether a token it guessed is right.
  if (request.origin && !service::origin_allowed(*request.origin, allowed_origins)) return refuse(403, "origin_not_allowed");
  std::optional<std::string> presented;
  if (request.authorization) {
    if (auto bearer = service::bearer_token(*request.authorization)) presented = std::string(*bearer);
  }
  if (!presented) presented = query_parameter(request.target, "access_token");
  if (!presented || presented->empty()) return refuse(401, "unauthorized");
  const std::string* matched = nullptr;
  for (const auto& token : tokens) {
    // Every token is compared, in constant time, whatever matched before.
    if (service::token_matches(*presented, token)) matched = &token;
  }
  if (!matched) return refuse(401, "unauthorized");
  UpgradeDecision d;
  d.owner = owner_of_token(*matched);
  if (health) {
    d.action = UpgradeDecision::Action::kHealth;
    return d;
  }
  if (!request.is_websocket_upgrade) return refuse(426, "upgrade_required");
  d.action = UpgradeDecision::Action::kUpgrade;
  return d;
}

}  // namespace sandboxd::api
