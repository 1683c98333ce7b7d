// Wall-clock times as the WebSocket protocol gives them: Unix milliseconds.
#pragma once

#include <chrono>
#include <cstdint>

namespace sandboxd::session {

inline std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace sandboxd::session
