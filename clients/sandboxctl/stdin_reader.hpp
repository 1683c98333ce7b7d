// Reads the caller's stdin on a thread of its own and hands the bytes to the
// io_context, at most a window ahead of what was sent on.
//
// A thread because stdin may be anything: asio's stream_descriptor refuses
// regular files (epoll cannot watch them), and a terminal or a pipe must not
// block the loop that writes the exec's output. The thread polls stdin
// together with a pipe of its own, so stopping never waits for input.
#pragma once

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "protocol/bytes.hpp"

namespace sandboxd::ctl {

class StdinReader {
 public:
  // Bytes read but not yet released; beyond it the thread stops reading, so
  // a fast producer is held back by the daemon's own stdin flow control.
  static constexpr std::size_t kWindow = 1 << 20;
  static constexpr std::size_t kChunk = 64 << 10;

  // `on_data` gets each chunk read, then `on_end` is called once at end of
  // input (or a read error); both run on `io`, never after stop().
  StdinReader(boost::asio::io_context& io, int fd, std::function<void(Bytes)> on_data, std::function<void()> on_end);
  ~StdinReader();
  StdinReader(const StdinReader&) = delete;
  StdinReader& operator=(const StdinReader&) = delete;

  // `n` bytes handed over earlier were sent on: room to read that many more.
  void release(std::size_t n);
  // Ends the thread; no callback runs after this returns.
  void stop();

 private:
  struct Shared;
  void run();

  boost::asio::io_context& io_;
  int fd_;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::shared_ptr<Shared> shared_;
  std::mutex mutex_;
  std::condition_variable room_;
  std::size_t outstanding_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sandboxd::ctl
