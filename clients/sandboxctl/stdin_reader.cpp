#include "clients/sandboxctl/stdin_reader.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <cerrno>

namespace sandboxd::ctl {

// What posted handlers need: they may run after the reader is gone, so they
// check `stopped` (only touched on the io thread) before calling back.
struct StdinReader::Shared {
  std::function<void(Bytes)> on_data;
  std::function<void()> on_end;
  bool stopped = false;
};

StdinReader::StdinReader(boost::asio::io_context& io, int fd, std::function<void(Bytes)> on_data,
                         std::function<void()> on_end)
    : io_(io), fd_(fd), shared_(std::make_shared<Shared>()) {
  shared_->on_data = std::move(on_data);
  shared_->on_end = std::move(on_end);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) == 0) {
    wake_read_ = pipe_fds[0];
    wake_write_ = pipe_fds[1];
  }
  thread_ = std::thread([this] { run(); });
}

StdinReader::~StdinReader() {
  stop();
  if (wake_read_ >= 0) ::close(wake_read_);
  if (wake_write_ >= 0) ::close(wake_write_);
}

void StdinReader::release(std::size_t n) {
  std::lock_guard lock(mutex_);
  outstanding_ -= std::min(n, outstanding_);
  room_.notify_one();
}

void StdinReader::stop() {
  shared_->stopped = true;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    room_.notify_one();
  }
  if (wake_write_ >= 0) {
    char byte = 1;
    while (::write(wake_write_, &byte, 1) < 0 && errno == EINTR) {
    }
  }
  if (thread_.joinable()) thread_.join();
}

void StdinReader::run() {
  auto post_end = [this] {
    boost::asio::post(io_, [shared = shared_] {
      if (!shared->stopped) shared->on_end();
    });
  };
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      room_.wait(lock, [this] { return stopping_ || outstanding_ < kWindow; });
      if (stopping_) return;
    }
    // poll() also reports regular files and /dev/null readable, so one loop
    // serves every kind of stdin.
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    int ready = ::poll(fds, wake_read_ >= 0 ? 2 : 1, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return post_end();
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    Bytes chunk(kChunk);
    ssize_t n = ::read(fd_, chunk.data(), chunk.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return post_end();  // end of input, or an error: either way no more
    chunk.resize(static_cast<std::size_t>(n));
    {
      std::lock_guard lock(mutex_);
      outstanding_ += chunk.size();
    }
    boost::asio::post(io_, [shared = shared_, chunk = std::move(chunk)]() mutable {
      if (!shared->stopped) shared->on_data(std::move(chunk));
    });
  }
}

}  // namespace sandboxd::ctl
