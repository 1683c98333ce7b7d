// Runs an io_context until a condition holds or a deadline passes: how a
// test waits for something to happen, instead of sleeping and hoping.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>

namespace sandboxd::testing {

// False when `limit` passed first.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace sandboxd::testing
