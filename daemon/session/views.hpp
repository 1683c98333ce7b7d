// What a client is shown of a sandbox and of an exec, and the sandbox's state
// changes as they happen: plain values, which the API layer puts on its wire.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/egress/flow_audit.hpp"
#include "daemon/session/exit_info.hpp"
#include "daemon/session/requests.hpp"
#include "protocol/enum_names.hpp"

namespace sandboxd::session {

// booting -> ready -> stopping -> exited; booting -> exited when the boot
// fails or the sandbox is destroyed first; ready -> crashed when its VM or
// guest agent goes away on its own.
enum class SandboxState { kBooting, kReady, kStopping, kExited, kCrashed };
inline constexpr auto kSandboxStateNames = make_enum_names(
    EnumName<SandboxState>{SandboxState::kBooting, "booting"}, EnumName<SandboxState>{SandboxState::kReady, "ready"},
    EnumName<SandboxState>{SandboxState::kStopping, "stopping"},
    EnumName<SandboxState>{SandboxState::kExited, "exited"}, EnumName<SandboxState>{SandboxState::kCrashed, "crashed"});
inline std::string_view to_string(SandboxState s) { return kSandboxStateNames.name(s); }

// starting -> running -> exited; starting -> exited when the start fails.
enum class ExecState { kStarting, kRunning, kExited };
inline constexpr auto kExecStateNames =
    make_enum_names(EnumName<ExecState>{ExecState::kStarting, "starting"},
                    EnumName<ExecState>{ExecState::kRunning, "running"}, EnumName<ExecState>{ExecState::kExited, "exited"});
inline std::string_view to_string(ExecState s) { return kExecStateNames.name(s); }

// A guest file system's size and use, in bytes; `available` is what an
// unprivileged user may still write.
struct DiskUsage {
  std::uint64_t size = 0;
  std::uint64_t used = 0;
  std::uint64_t available = 0;
};

// A mount as the Sandbox object shows it.
struct MountInfo {
  std::string path;
  std::string type;       // "host" or "memory"
  std::string host_path;  // host mounts
  bool read_only = false;
};

struct SandboxInfo {
  std::string id;
  SandboxState state = SandboxState::kBooting;
  std::string image;
  unsigned cpus = 0;
  unsigned memory_mib = 0;
  Labels labels;
  std::optional<std::string> key;
  std::chrono::system_clock::time_point created_at;
  std::optional<std::chrono::system_clock::time_point> expires_at;
  std::uint32_t idle_timeout_s = 0;
  NetworkChoice network{net::EgressMode::kDenyAll, {}};
  bool from_pool = false;
  std::int64_t boot_ms = 0;
  std::size_t execs_running = 0;
  unsigned disk_mib = 0;  // the writable layer's size; 0: the default, half the memory
  DiskBacking disk_backing = DiskBacking::kMemory;
  // Measured in the guest when asked for (sandbox.get): the file system of
  // its root (the writable layer, in a layered image).
  std::optional<DiskUsage> disk;
  std::vector<MountInfo> mounts;
};

struct ExecInfo {
  std::string id;
  std::string sandbox;
  std::vector<std::string> argv;
  bool pty = false;
  bool stdin_open = false;
  ExecState state = ExecState::kStarting;
  std::uint32_t pid = 0;  // 0: not started (yet)
  std::chrono::system_clock::time_point started_at;
  std::uint64_t first_seq = 1;
  std::uint64_t last_seq = 0;
  std::optional<ExitInfo> exit;
};

struct SandboxStateEvent {
  std::string sandbox;
  SandboxState state = SandboxState::kReady;
  // Why it is stopping, exited or crashed: destroyed, lifetime, idle,
  // shutdown, boot_failed, qemu_exited, guest_lost. Empty for ready.
  std::string reason;
  // For crashed: QEMU's exit status, whether the OOM killer ran, the console tail.
  std::string detail;
};

// A new flow of the sandbox's guest and what its network policy made of it
// (net/egress/flow_audit.hpp), for the sandbox's subscribers.
struct NetFlowEvent {
  std::string sandbox;
  net::FlowAudit flow;
  // Flows not reported since the last event, over the events' rate bound
  // (Sandbox::kNetEventsPerSecond).
  std::uint64_t unreported_before = 0;
};

}  // namespace sandboxd::session
