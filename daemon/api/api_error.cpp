#include "daemon/api/api_error.hpp"

namespace sandboxd::api {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadJson: return "bad_json";
    case ErrorCode::kBadRequest: return "bad_request";
    case ErrorCode::kUnknownOp: return "unknown_op";
    case ErrorCode::kUnsupportedProtocol: return "unsupported_protocol";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kNotReady: return "not_ready";
    case ErrorCode::kNotRunning: return "not_running";
    case ErrorCode::kNotATty: return "not_a_tty";
    case ErrorCode::kReadOnly: return "read_only";
    case ErrorCode::kStdinClosed: return "stdin_closed";
    case ErrorCode::kBadFrame: return "bad_frame";
    case ErrorCode::kUnknownExec: return "unknown_exec";
    case ErrorCode::kLogTruncated: return "log_truncated";
    case ErrorCode::kLimitExceeded: return "limit_exceeded";
    case ErrorCode::kTooManyPending: return "too_many_pending";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kShuttingDown: return "shutting_down";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

ApiError ApiError::bad_request(std::string field, std::string message) {
  ApiError e{ErrorCode::kBadRequest, field + ": " + message, {}};
  e.details["field"] = field;
  return e;
}

ApiError ApiError::limit(std::string limit_name, std::string message) {
  ApiError e{ErrorCode::kLimitExceeded, std::move(message), {}};
  e.details["limit"] = limit_name;
  return e;
}

ApiError ApiError::not_found(std::string what) { return {ErrorCode::kNotFound, std::move(what) + " not found", {}}; }

}  // namespace sandboxd::api
