#include "daemon/vm/network_mode.hpp"

namespace sandboxd::vm {

const char* to_string(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::kNone: return "none";
    case NetworkMode::kSlirp: return "slirp";
    case NetworkMode::kStack: return "stack";
  }
  return "?";
}

std::optional<NetworkMode> network_mode_from_string(std::string_view s) {
  if (s == "none") return NetworkMode::kNone;
  if (s == "slirp") return NetworkMode::kSlirp;
  if (s == "stack") return NetworkMode::kStack;
  return std::nullopt;
}

}  // namespace sandboxd::vm
