// The errors a WebSocket client can get (WS_PROTOCOL.md, "Error codes"):
// a machine-readable code, a message for people, and for some codes one more
// member (the field that was wrong, the limit that was hit, ...).
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

namespace sandboxd::api {

enum class ErrorCode {
  kBadJson,
  kBadRequest,
  kUnknownOp,
  kUnsupportedProtocol,
  kNotFound,
  kNotReady,
  kNotRunning,
  kNotATty,
  kReadOnly,
  kStdinClosed,
  kBadFrame,
  kUnknownExec,
  kLogTruncated,
  kLimitExceeded,
  kTooManyPending,
  kUnavailable,
  kShuttingDown,
  kInternal,
};

std::string_view to_string(ErrorCode code);

struct ApiError {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // Further members of the error frame, e.g. {"field": "cpus"}.
  boost::json::object details;

  static ApiError bad_request(std::string field, std::string message);
  static ApiError limit(std::string limit_name, std::string message);
  static ApiError not_found(std::string what);
};

}  // namespace sandboxd::api
