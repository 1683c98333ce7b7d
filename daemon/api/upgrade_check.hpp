// Who may open a WebSocket: the checks on the HTTP upgrade request, before
// any WebSocket byte is exchanged (WS_PROTOCOL.md, "Connecting").
//
// Pure: the request's method, target and headers in, a decision out, so every
// refusal (401, 403, 404, 426) is unit-tested without sockets.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::api {

struct UpgradeRequest {
  std::string_view method;
  std::string_view target;  // path and query
  std::optional<std::string_view> authorization;
  std::optional<std::string_view> origin;
  bool is_websocket_upgrade = false;
};

struct UpgradeDecision {
  enum class Action { kUpgrade, kHealth, kRefuse };
  Action action = Action::kRefuse;
  unsigned status = 0;   // for kRefuse: 401, 403, 404, 405 or 426
  std::string reason;    // for kRefuse: the error code in the body
  std::string owner;     // for kUpgrade / kHealth: whose sandboxes these are
};

// A token's owner name: derived from the token (a digest, never the token),
// so it is the same across restarts and safe to log and record.
std::string owner_of_token(std::string_view token);

UpgradeDecision decide_upgrade(const UpgradeRequest& request, const std::vector<std::string>& tokens,
                               const std::vector<std::string>& allowed_origins);

// The value of `name` in the query part of `target` ("/v1?a=1&b=2"), percent-decoded.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name);

}  // namespace sandboxd::api
