// The errors a WebSocket client can get (WS_PROTOCOL.md, "Error codes"):
// a machine-readable code, a message for people, and for some codes one more
// member (the field that was wrong, the limit that was hit, ...).
//
// The sandbox service's errors (session/error.hpp) become these with
// from_domain(); the codes only a transport can give (a frame that is not
// JSON, an unknown operation, a bad binary frame) are made here.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "daemon/session/error.hpp"
#include "protocol/enum_names.hpp"

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
  kExists,
  kNotADirectory,
  kIsADirectory,
  kNotEmpty,
  kNoSpace,
  kPermissionDenied,
  kNameTooLong,
  kSymlinkLoop,
  kIoError,
  kUnknownTransfer,
  kCancelled,
};

inline constexpr auto kErrorCodeNames = make_enum_names(
    EnumName<ErrorCode>{ErrorCode::kBadJson, "bad_json"}, EnumName<ErrorCode>{ErrorCode::kBadRequest, "bad_request"},
    EnumName<ErrorCode>{ErrorCode::kUnknownOp, "unknown_op"},
    EnumName<ErrorCode>{ErrorCode::kUnsupportedProtocol, "unsupported_protocol"},
    EnumName<ErrorCode>{ErrorCode::kNotFound, "not_found"}, EnumName<ErrorCode>{ErrorCode::kNotReady, "not_ready"},
    EnumName<ErrorCode>{ErrorCode::kNotRunning, "not_running"}, EnumName<ErrorCode>{ErrorCode::kNotATty, "not_a_tty"},
    EnumName<ErrorCode>{ErrorCode::kReadOnly, "read_only"},
    EnumName<ErrorCode>{ErrorCode::kStdinClosed, "stdin_closed"}, EnumName<ErrorCode>{ErrorCode::kBadFrame, "bad_frame"},
    EnumName<ErrorCode>{ErrorCode::kUnknownExec, "unknown_exec"},
    EnumName<ErrorCode>{ErrorCode::kLogTruncated, "log_truncated"},
    EnumName<ErrorCode>{ErrorCode::kLimitExceeded, "limit_exceeded"},
    EnumName<ErrorCode>{ErrorCode::kTooManyPending, "too_many_pending"},
    EnumName<ErrorCode>{ErrorCode::kUnavailable, "unavailable"},
    EnumName<ErrorCode>{ErrorCode::kShuttingDown, "shutting_down"}, EnumName<ErrorCode>{ErrorCode::kInternal, "internal"},
    EnumName<ErrorCode>{ErrorCode::kExists, "exists"}, EnumName<ErrorCode>{ErrorCode::kNotADirectory, "not_a_directory"},
    EnumName<ErrorCode>{ErrorCode::kIsADirectory, "is_a_directory"},
    EnumName<ErrorCode>{ErrorCode::kNotEmpty, "not_empty"}, EnumName<ErrorCode>{ErrorCode::kNoSpace, "no_space"},
    EnumName<ErrorCode>{ErrorCode::kPermissionDenied, "permission_denied"},
    EnumName<ErrorCode>{ErrorCode::kNameTooLong, "name_too_long"},
    EnumName<ErrorCode>{ErrorCode::kSymlinkLoop, "symlink_loop"}, EnumName<ErrorCode>{ErrorCode::kIoError, "io_error"},
    EnumName<ErrorCode>{ErrorCode::kUnknownTransfer, "unknown_transfer"},
    EnumName<ErrorCode>{ErrorCode::kCancelled, "cancelled"});
inline std::string_view to_string(ErrorCode code) { return kErrorCodeNames.name(code); }

struct ApiError {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // Further members of the error frame, e.g. {"field": "cpus"}.
  boost::json::object details;

  static ApiError bad_request(std::string field, std::string message);
  static ApiError from_domain(const session::Error& error);
};

}  // namespace sandboxd::api
