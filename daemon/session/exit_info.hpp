// How an exec ended, as the WebSocket protocol reports it (WS_PROTOCOL.md,
// "Exit members"), derived from the guest's Exit or from what happened to
// the sandbox around it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocol/messages.hpp"

namespace sandboxd::session {

// Why the daemon itself ended or killed the exec, if it did.
enum class EndCause { kNone, kTimeout, kKilled, kSandboxDestroyed, kSandboxCrashed };

struct ExitInfo {
  std::string reason;  // exited, signaled, timeout, killed, start_failed, sandbox_destroyed, sandbox_crashed
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::uint64_t duration_ms = 0;
  std::string message;
  // For sandbox_destroyed and sandbox_crashed: what ended the sandbox, in
  // the words of its sandbox.state event (destroyed, lifetime, idle,
  // shutdown, qemu_exited, guest_lost).
  std::string sandbox_reason;
};

// The guest reported an Exit; `cause` is what the daemon did to the exec, if anything.
ExitInfo exit_from_guest(const protocol::Exit& exit, EndCause cause, std::uint64_t duration_ms);
// The exec ended without an Exit from the guest (sandbox gone, guest silent).
ExitInfo exit_without_guest(EndCause cause, std::string message, std::uint64_t duration_ms,
                            std::string sandbox_reason = {});

}  // namespace sandboxd::session
