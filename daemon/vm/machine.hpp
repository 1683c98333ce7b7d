// A booted sandbox machine as the rest of the daemon holds it: the guest
// agent to run commands through, the guest's network to hand a policy to,
// and the news of its end. Whatever the machine holds on the host (QEMU, the
// network's sockets, its runtime record) is released by its destructor, so
// no path can forget to; stop() does the same and says when it is done.
//
// An interface, so that the sandbox, exec and pool logic above it can be
// tested with machines that boot nothing (tests/support/fake_machine.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "daemon/agent/guest_agent.hpp"
#include "daemon/net/egress/network_assignment.hpp"

namespace sandboxd::vfs {
class FsServer;
}

namespace sandboxd::vm {

// How a machine ended on its own.
struct MachineExit {
  enum class Kind { kQemuExited, kGuestLost };
  Kind kind = Kind::kQemuExited;
  std::string report;  // QEMU's exit status and message, the console tail
};

class Machine {
 public:
  virtual ~Machine() = default;

  virtual std::shared_ptr<agent::GuestAgent> agent() const = 0;
  // From QEMU's start to the agent's hello.
  virtual std::chrono::microseconds boot_time() const = 0;
  // Called at most once, when the machine ends without being stopped.
  virtual void on_exit(std::function<void(const MachineExit&)> handler) = 0;
  // Gives the machine to its sandbox: its identity, egress policy and audit
  // sink apply to flows opened from now on (net/egress/network_assignment.hpp).
  // Nothing happens on a machine without a network.
  virtual void assign(net::NetworkAssignment assignment) = 0;
  // Replaces the assigned egress policy: new flows and DNS answers follow
  // it, open flows keep going. Nothing happens without a network.
  virtual void set_egress_policy(net::EgressPolicy policy) = 0;
  // Ends the machine; `gone` runs once QEMU has exited and everything the
  // machine held on the host is released. on_exit handlers are not called.
  virtual void stop(std::function<void()> gone) = 0;
  // The network's counters as text (empty without a network).
  virtual std::string network_stats() const = 0;
  // What mounts host-controlled file systems in the guest (daemon/vfs), or
  // null for a machine without the mounts port.
  virtual std::shared_ptr<vfs::FsServer> mounts() const { return nullptr; }
};

using MachinePtr = std::unique_ptr<Machine>;

// The shape of a machine: what a sandbox asks for, and what the pool keeps
// warm machines of.
struct MachineShape {
  std::string image;
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  // 0: the writable layer is a tmpfs in guest memory. Otherwise it is an
  // ext4 disk of this many MiB made for the machine (writable_disk.hpp).
  unsigned disk_file_mib = 0;
  auto operator<=>(const MachineShape&) const = default;
};

}  // namespace sandboxd::vm
