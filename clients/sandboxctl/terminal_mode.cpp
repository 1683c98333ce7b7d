#include "clients/sandboxctl/terminal_mode.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

namespace sandboxd::ctl {

RawTerminal::RawTerminal(int fd, Mode mode) : fd_(fd) {
  if (!::isatty(fd) || ::tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  if (mode == Mode::kFull) {
    // Every byte typed is read at once and unchanged; output processing is
    // the remote pty's (it already turns \n into \r\n).
    ::cfmakeraw(&raw);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
  } else {
    raw.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  }
  if (::tcsetattr(fd, TCSADRAIN, &raw) == 0) active_ = true;
}

RawTerminal::~RawTerminal() { restore(); }

void RawTerminal::restore() {
  if (!active_) return;
  active_ = false;
  while (::tcsetattr(fd_, TCSADRAIN, &saved_) != 0 && errno == EINTR) {
  }
}

std::optional<TerminalSize> local_terminal_size() {
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    winsize size{};
    if (::isatty(fd) && ::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0)
      return TerminalSize{size.ws_col, size.ws_row};
  }
  return std::nullopt;
}

}  // namespace sandboxd::ctl
