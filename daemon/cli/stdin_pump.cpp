#include "daemon/cli/stdin_pump.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>

#include "protocol/messages.hpp"

namespace sandboxd::cli {
namespace asio = boost::asio;

StdinPump::StdinPump(asio::io_context& io, int fd, std::function<std::size_t()> credit,
                     std::function<std::size_t(ByteSpan, bool)> deliver)
    : io_(io), fd_(fd), credit_(std::move(credit)), deliver_(std::move(deliver)) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy >= 0) {
    boost::system::error_code ec;
    stream_.emplace(io);
    stream_->assign(copy, ec);
    if (ec) {  // not pollable: a regular file or /dev/null
      stream_.reset();
      ::close(copy);
    } else {
      // Left blocking on purpose: O_NONBLOCK would be set on the shared open
      // file and leak to the caller's shell. A read after "readable" returns
      // what is there without waiting.
      fd_ = copy;
    }
  }
  resume();
}

void StdinPump::stop() {
  finished_ = true;
  if (stream_) {
    boost::system::error_code ec;
    stream_->cancel(ec);
  }
}

void StdinPump::resume() {
  if (finished_ || scheduled_) return;
  scheduled_ = true;
  asio::post(io_, [this] {
    scheduled_ = false;
    pump();
  });
}

void StdinPump::flush_pending() {
  if (pending_.empty() && !eof_) return;
  std::size_t taken = deliver_(pending_, eof_);
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(taken));
  if (pending_.empty() && eof_) finished_ = true;
}

void StdinPump::pump() {
  if (finished_) return;
  flush_pending();
  if (finished_ || !pending_.empty() || eof_) return;  // wait for credit
  if (credit_() == 0) return;
  if (stream_) {
    if (waiting_) return;
    waiting_ = true;
    stream_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this](const boost::system::error_code& ec) { on_readable(ec); });
  } else {
    read_once();
    resume();
  }
}

void StdinPump::on_readable(const boost::system::error_code& ec) {
  waiting_ = false;
  if (finished_) return;
  if (ec) {
    eof_ = true;
  } else {
    read_once();
  }
  pump();
}

void StdinPump::read_once() {
  std::size_t want = std::min<std::size_t>(credit_(), protocol::kMaxChunk);
  if (want == 0) return;
  pending_.resize(want);
  ssize_t n = ::read(fd_, pending_.data(), want);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    pending_.clear();
    return;
  }
  if (n <= 0) {
    pending_.clear();
    eof_ = true;  // end of input, or an error reading it: either way, no more
    return;
  }
  pending_.resize(static_cast<std::size_t>(n));
}

}  // namespace sandboxd::cli
