// Moves the caller's stdin into an exec, no faster than the guest accepts it.
//
// Pipes and terminals are read asynchronously. Regular files and /dev/null
// cannot be polled (epoll refuses them), so they are read directly: such reads
// never block for long.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <optional>
#include <vector>

#include "protocol/bytes.hpp"

namespace sandboxd::cli {

class StdinPump {
 public:
  // `credit()` says how many bytes the exec takes now; `deliver(data, eof)`
  // hands them over and returns how many it took.
  StdinPump(boost::asio::io_context& io, int fd, std::function<std::size_t()> credit,
            std::function<std::size_t(ByteSpan, bool eof)> deliver);
  // Call when credit may have grown.
  void resume();
  bool finished() const { return finished_; }
  void stop();

 private:
  void pump();
  void on_readable(const boost::system::error_code& ec);
  void read_once();
  void flush_pending();

  boost::asio::io_context& io_;
  std::optional<boost::asio::posix::stream_descriptor> stream_;
  int fd_;
  std::function<std::size_t()> credit_;
  std::function<std::size_t(ByteSpan, bool)> deliver_;
  Bytes pending_;  // read but not yet taken
  bool eof_ = false;
  bool finished_ = false;
  bool waiting_ = false;
  bool scheduled_ = false;
};

}  // namespace sandboxd::cli
