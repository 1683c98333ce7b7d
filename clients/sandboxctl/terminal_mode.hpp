// The local terminal for interactive execs: raw mode while a remote pty is
// driven (every key, ^C and ^D included, goes to the remote side as a byte),
// and its size for the remote pty and SIGWINCH.
#pragma once

#include <termios.h>

#include <optional>

namespace sandboxd::ctl {

// Puts `fd` in raw mode when it is a terminal and restores the saved mode on
// restore() or destruction, so every way out of sandboxctl (errors,
// exceptions, signals handled by the io loop) gives the shell back its
// terminal.
class RawTerminal {
 public:
  enum class Mode {
    kFull,        // input and output raw (cfmakeraw): for forwarded keystrokes
    kOutputOnly,  // output only: a remote pty's "\r\n" is written unchanged,
                  // while ^C still raises SIGINT here
  };
  explicit RawTerminal(int fd, Mode mode = Mode::kFull);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

  bool active() const { return active_; }
  void restore();

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

struct TerminalSize {
  unsigned cols = 0;
  unsigned rows = 0;
  friend bool operator==(const TerminalSize&, const TerminalSize&) = default;
};

// The size of the first of stdin, stdout and stderr that is a terminal.
std::optional<TerminalSize> local_terminal_size();

}  // namespace sandboxd::ctl
