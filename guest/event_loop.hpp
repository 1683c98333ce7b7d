// The agent's one epoll set, with the events wanted on each fd remembered so
// that restating the same interest costs no system call.
//
// An fd whose wanted events are empty is taken out of the kernel's set rather
// than left in it with no events: epoll reports EPOLLHUP and EPOLLERR whether
// or not they were asked for, so a pipe whose writer has exited while its exec
// waits for output credit would otherwise wake the loop over and over.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <map>
#include <span>

namespace sandboxd::guest {

class EventLoop {
 public:
  // Throws std::system_error when the epoll set cannot be made.
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Wants `events` on `fd` (0: none for now); `tag` comes back with each event.
  void watch(int fd, std::uint32_t events, std::uint64_t tag);
  // Forgets `fd`; call before closing it.
  void unwatch(int fd);
  // Waits up to `timeout_ms` (-1: without limit); returns how many of
  // `events` were filled (0 on timeout or EINTR).
  int wait(std::span<epoll_event> events, int timeout_ms);

 private:
  struct Interest {
    std::uint32_t events = 0;
    std::uint64_t tag = 0;
    bool in_kernel = false;
  };
  int epoll_fd_ = -1;
  std::map<int, Interest> interest_;
};

}  // namespace sandboxd::guest
