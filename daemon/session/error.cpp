#include "daemon/session/error.hpp"

namespace sandboxd::session {

Error Error::bad_request(std::string field, std::string message) {
  Error e{ErrorCode::kBadRequest, field + ": " + message};
  e.field = std::move(field);
  return e;
}

Error Error::limit_exceeded(std::string limit, std::string message) {
  Error e{ErrorCode::kLimitExceeded, std::move(message)};
  e.limit = std::move(limit);
  return e;
}

Error Error::not_found(std::string what) { return {ErrorCode::kNotFound, std::move(what) + " not found"}; }

}  // namespace sandboxd::session
