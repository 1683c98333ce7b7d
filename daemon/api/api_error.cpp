#include "daemon/api/api_error.hpp"

namespace sandboxd::api {

ApiError ApiError::bad_request(std::string field, std::string message) {
  ApiError e{ErrorCode::kBadRequest, field + ": " + message, {}};
  e.details["field"] = field;
  return e;
}

namespace {
ErrorCode wire_code(session::ErrorCode code) {
  using D = session::ErrorCode;
  switch (code) {
    case D::kBadRequest: return ErrorCode::kBadRequest;
    case D::kNotFound: return ErrorCode::kNotFound;
    case D::kNotReady: return ErrorCode::kNotReady;
    case D::kNotRunning: return ErrorCode::kNotRunning;
    case D::kNotATty: return ErrorCode::kNotATty;
    case D::kReadOnly: return ErrorCode::kReadOnly;
    case D::kStdinClosed: return ErrorCode::kStdinClosed;
    case D::kNotAttached: return ErrorCode::kUnknownExec;
    case D::kLogTruncated: return ErrorCode::kLogTruncated;
    case D::kLimitExceeded: return ErrorCode::kLimitExceeded;
    case D::kUnavailable: return ErrorCode::kUnavailable;
    case D::kShuttingDown: return ErrorCode::kShuttingDown;
    case D::kInternal: return ErrorCode::kInternal;
    case D::kExists: return ErrorCode::kExists;
    case D::kNotADirectory: return ErrorCode::kNotADirectory;
    case D::kIsADirectory: return ErrorCode::kIsADirectory;
    case D::kNotEmpty: return ErrorCode::kNotEmpty;
    case D::kNoSpace: return ErrorCode::kNoSpace;
    case D::kPermissionDenied: return ErrorCode::kPermissionDenied;
    case D::kNameTooLong: return ErrorCode::kNameTooLong;
    case D::kSymlinkLoop: return ErrorCode::kSymlinkLoop;
    case D::kIoError: return ErrorCode::kIoError;
    case D::kCancelled: return ErrorCode::kCancelled;
  }
  return ErrorCode::kInternal;
}
}  // namespace

ApiError ApiError::from_domain(const session::Error& error) {
  ApiError e{wire_code(error.code), error.message, {}};
  if (!error.field.empty()) e.details["field"] = error.field;
  if (!error.limit.empty()) e.details["limit"] = error.limit;
  if (!error.state.empty()) e.details["state"] = error.state;
  if (!error.exec.empty()) e.details["exec"] = error.exec;
  if (error.first_seq) e.details["first_seq"] = *error.first_seq;
  return e;
}

}  // namespace sandboxd::api
