// The client side of one exec, for `exec`, `shell` and `attach`: starts or
// attaches to it, writes its output to stdout and stderr as frames arrive,
// forwards stdin, signals and terminal size changes, survives a lost
// connection by reconnecting and resuming after the last sequence number
// processed, and returns the status sandboxctl exits with.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clients/sandboxctl/connection_target.hpp"

namespace sandboxd::ctl {

struct ExecRequest {
  enum class Mode { kStart, kAttach };
  Mode mode = Mode::kStart;
  std::string exec_id;  // always set: generated when the user gave none

  // kStart
  std::string sandbox;
  std::vector<std::string> argv;
  std::optional<std::string> shell;
  boost::json::object env;
  std::optional<std::string> cwd;
  std::optional<std::string> user;  // the guest account; the daemon's default (root) when unset
  std::optional<std::uint64_t> timeout_ms;
  bool tty = false;  // run on a pty of the local terminal's size and $TERM

  // kAttach
  std::uint64_t after_seq = 0;
  bool read_only = false;

  bool forward_stdin = false;
};

// Runs until the exec has ended (its status), the daemon refused something
// (1), or the daemon could not be reached or reached again within 30 s (2).
int run_exec(const Target& target, const ExecRequest& request);

}  // namespace sandboxd::ctl
