// What can go wrong when a client asks the sandbox service for something:
// a code a program can act on, a message for people, and the one thing the
// code refers to where it has one (the request field that was wrong, the
// limit that was hit, ...).
//
// The domain's own errors: the API layer maps them to its wire codes and
// error frames (api/error_frame.hpp), and adds the errors only a transport
// can have (a frame that is not JSON, an unknown operation).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sandboxd::session {

enum class ErrorCode {
  kBadRequest,     // a value the service cannot take (the field is named)
  kNotFound,       // no such sandbox or exec for this owner; no such file (ENOENT)
  kNotReady,       // the sandbox is not ready (its state is named)
  kNotRunning,     // the exec has ended
  kNotATty,        // a terminal operation on an exec without one
  kReadOnly,       // control from a read-only attachment; a file write on a read-only file system (EROFS)
  kStdinClosed,    // stdin that was never open or is closed
  kNotAttached,    // control from a sink that is not attached (the exec is named)
  kLogTruncated,   // a replay from before the oldest entry still kept
  kLimitExceeded,  // a configured limit (named by its config key)
  kUnavailable,    // the sandbox could not be started, or its VM is gone
  kShuttingDown,   // the daemon takes no new work
  kInternal,       // a fault of the daemon's own
  // A file operation in the guest failed (session/file_ops.hpp maps errno):
  kExists,            // EEXIST
  kNotADirectory,     // ENOTDIR
  kIsADirectory,      // EISDIR
  kNotEmpty,          // ENOTEMPTY
  kNoSpace,           // ENOSPC, EDQUOT
  kPermissionDenied,  // EACCES, EPERM
  kNameTooLong,       // ENAMETOOLONG
  kSymlinkLoop,       // ELOOP
  kIoError,           // any other errno (named in the message)
  kCancelled,         // a file transfer its client cancelled
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string field;                       // kBadRequest
  std::string limit;                       // kLimitExceeded
  std::string state;                       // kNotReady
  std::string exec;                        // kNotAttached
  std::optional<std::uint64_t> first_seq;  // kLogTruncated

  static Error bad_request(std::string field, std::string message);
  static Error limit_exceeded(std::string limit, std::string message);
  static Error not_found(std::string what);
  static Error shutting_down() { return {ErrorCode::kShuttingDown, "the daemon is shutting down"}; }
};

}  // namespace sandboxd::session
