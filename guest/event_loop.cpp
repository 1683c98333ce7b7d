#include "guest/event_loop.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace sandboxd::guest {

EventLoop::EventLoop() : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

EventLoop::~EventLoop() { ::close(epoll_fd_); }

void EventLoop::watch(int fd, std::uint32_t events, std::uint64_t tag) {
  Interest& in = interest_[fd];
  if (events == 0) {
    if (in.in_kernel) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    in = Interest{0, tag, false};
    return;
  }
  if (in.in_kernel && in.events == events && in.tag == tag) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  if (::epoll_ctl(epoll_fd_, in.in_kernel ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  in = Interest{events, tag, true};
}

void EventLoop::unwatch(int fd) {
  auto it = interest_.find(fd);
  if (it == interest_.end()) return;
  if (it->second.in_kernel) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  interest_.erase(it);
}

int EventLoop::wait(std::span<epoll_event> events, int timeout_ms) {
  int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    throw std::system_error(errno, std::generic_category(), "epoll_wait");
  }
  return n;
}

}  // namespace sandboxd::guest
