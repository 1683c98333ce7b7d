// One sandbox VM: its QEMU process, its control channel to the guest agent,
// and its console, from boot to teardown.
//
// boot() reports exactly once: with the VM once the agent's hello arrived, or
// with a reason (QEMU's own error, or the console tail when the guest never
// answered before the deadline). A VM that fails to boot is killed before the
// callback runs.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/agent/guest_agent.hpp"
#include "daemon/vm/accelerator.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/network_mode.hpp"
#include "daemon/vm/output_tail.hpp"
#include "daemon/vm/qemu_process.hpp"
#include "daemon/vm/writable_disk.hpp"

namespace sandboxd::vm {

class Vm;

struct VmSpec {
  GuestImage image;
  std::string qemu_binary = "/usr/bin/qemu-system-x86_64";
  Accelerator accelerator = Accelerator::kTcg;
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  std::optional<std::uint64_t> tsc_khz;
  bool seccomp_sandbox = true;
  std::chrono::milliseconds boot_deadline{20000};
  // Names of further virtserialports whose host ends the caller wants.
  std::vector<std::string> extra_ports;
  // The guest's eth0 (network_mode.hpp). MTU: kMinMtu..kMaxMtu.
  NetworkMode network = NetworkMode::kNone;
  std::string guest_mac = kDefaultGuestMac;
  unsigned mtu = kDefaultMtu;
  // Runs once QEMU has started, before the guest's hello: the place to attach
  // whatever serves network_link(), since the guest asks DHCP before it says
  // hello. Runs again for each retried boot, with that boot's fresh Vm; a Vm
  // whose boot fails is destroyed, which closes its link.
  std::function<void(Vm&)> on_spawned;
  // The writable layer on a disk instead of a tmpfs (a layered image only).
  // Shared: a retried boot attaches the same, still empty, disk.
  std::shared_ptr<WritableDisk> writable_disk;
  // For benchmarks that compare against a peer device (a 9p or virtiofs
  // share): QEMU arguments appended after all others, and words appended to
  // the kernel command line. The daemon never sets them; nothing from a
  // client reaches them.
  std::vector<std::string> extra_qemu_args;
  std::string extra_kernel_args;
};

enum class BootFailure { kSpawnFailed, kQemuExited, kDeadline };

struct BootError {
  BootFailure kind;
  std::string message;
};

class Vm : public std::enable_shared_from_this<Vm> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  using BootCallback = std::function<void(Expected<std::shared_ptr<Vm>, BootError>)>;

  static void boot(boost::asio::io_context& io, const VmSpec& spec, BootCallback done);
  ~Vm();

  agent::GuestAgent& agent() { return *agent_; }
  // For holders that may outlive the VM (an exec's record).
  std::weak_ptr<agent::GuestAgent> agent_handle() const { return agent_; }
  QemuProcess& process() { return *process_; }
  const VmSpec& spec() const { return spec_; }
  std::string console_tail() const { return console_tail_.text(); }
  std::chrono::microseconds boot_time() const { return boot_time_; }
  Socket& extra_port(std::size_t i) { return extra_ports_.at(i); }
  // Stack mode only: the daemon's end of the guest's Ethernet link, a stream
  // of frames each preceded by its length as a u32 big-endian.
  Socket& network_link() { return network_link_.value(); }
  bool has_network_link() const { return network_link_.has_value(); }

  // Asks the guest to power off; kills QEMU if it has not exited after
  // `grace`. `done` runs once QEMU is gone.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> done);
  void kill();
  // Runs when QEMU exits for any reason, with a description of why.
  void on_exit(std::function<void(const std::string&)> handler);
  // Runs when the guest agent's channel closes after the boot (QEMU may
  // still run, or be about to report its exit).
  void on_agent_lost(std::function<void(const std::string&)> handler);

 private:
  Vm(boost::asio::io_context& io, VmSpec spec);
  void read_console();
  void finish_boot(Expected<std::shared_ptr<Vm>, BootError> result);
  std::string exit_report() const;

  VmSpec spec_;
  std::shared_ptr<QemuProcess> process_;
  std::shared_ptr<agent::GuestAgent> agent_;
  std::optional<Socket> console_;
  std::array<char, 4096> console_buf_{};
  OutputTail console_tail_{8192};
  std::vector<Socket> extra_ports_;
  std::optional<Socket> network_link_;
  boost::asio::steady_timer timer_;
  BootCallback boot_done_;
  std::chrono::steady_clock::time_point spawned_at_;
  std::chrono::microseconds boot_time_{0};
  std::vector<std::function<void(const std::string&)>> exit_handlers_;
  std::vector<std::function<void(const std::string&)>> agent_lost_handlers_;
};

}  // namespace sandboxd::vm
