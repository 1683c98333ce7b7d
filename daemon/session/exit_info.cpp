#include "daemon/session/exit_info.hpp"

#include <signal.h>

namespace sandboxd::session {

namespace {
const char* reason_of(EndCause cause) {
  switch (cause) {
    case EndCause::kTimeout: return "timeout";
    case EndCause::kKilled: return "killed";
    case EndCause::kSandboxDestroyed: return "sandbox_destroyed";
    case EndCause::kSandboxCrashed: return "sandbox_crashed";
    case EndCause::kNone: break;
  }
  return "signaled";
}
}  // namespace

ExitInfo exit_from_guest(const protocol::Exit& exit, EndCause cause, std::uint64_t duration_ms) {
  ExitInfo info;
  info.duration_ms = duration_ms;
  info.message = exit.message;
  switch (exit.kind) {
    case protocol::ExitKind::kExited:
      info.reason = "exited";
      info.exit_code = exit.status;
      break;
    case protocol::ExitKind::kSignaled:
      // A process that died of the signal the daemon sent is reported for
      // why it was sent; any other signal is the process's own business.
      info.reason = (cause == EndCause::kTimeout || cause == EndCause::kKilled) && exit.status == SIGKILL
                        ? reason_of(cause)
                        : "signaled";
      info.signal = exit.status;
      break;
    case protocol::ExitKind::kStartFailed:
      info.reason = "start_failed";
      info.exit_code = exit.status;
      break;
  }
  return info;
}

ExitInfo exit_without_guest(EndCause cause, std::string message, std::uint64_t duration_ms,
                            std::string sandbox_reason) {
  ExitInfo info;
  info.reason = reason_of(cause == EndCause::kNone ? EndCause::kSandboxCrashed : cause);
  if (cause == EndCause::kTimeout || cause == EndCause::kKilled) info.signal = SIGKILL;
  info.duration_ms = duration_ms;
  info.message = std::move(message);
  if (info.reason == "sandbox_destroyed" || info.reason == "sandbox_crashed") info.sandbox_reason = std::move(sandbox_reason);
  return info;
}

}  // namespace sandboxd::session
