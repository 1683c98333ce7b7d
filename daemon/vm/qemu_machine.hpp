// The daemon's Machine (machine.hpp): a booted QEMU VM with the sandbox
// network the factory attached to it and its runtime record.
//
// Release, whether by stop() or the destructor, goes: stop the network
// (every flow's socket closes) and the mounts port, kill QEMU, and once it
// has exited and been reaped, remove the runtime record on the blocking
// worker; only then is the machine gone. What the release needs is held by its own handlers, so it
// completes after this object is destroyed.
//
// A guest agent whose channel closes while QEMU goes on running is a lost
// guest: after a short grace (in which a QEMU exit is reported as such) the
// machine reports kGuestLost and kills QEMU.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>

#include "daemon/net/sandbox_network.hpp"
#include "daemon/service/runtime_records.hpp"
#include "daemon/vfs/fs_server.hpp"
#include "daemon/vm/machine.hpp"
#include "daemon/vm/vm.hpp"

namespace sandboxd::vm {

// Counts machines not yet gone, so that the factory's owner can wait for
// the last one at shutdown.
struct MachineCount {
  std::size_t live = 0;
  std::vector<std::function<void()>> when_none;
  void released();
};

class QemuMachine final : public Machine {
 public:
  static constexpr std::chrono::seconds kGuestLostGrace{2};

  // `records` may be null (no runtime record was written).
  QemuMachine(boost::asio::any_io_executor executor, std::shared_ptr<Vm> vm, std::shared_ptr<net::SandboxNetwork> network,
              std::shared_ptr<vfs::FsServer> mounts, std::string record_id,
              std::shared_ptr<service::RuntimeRecords> records, std::shared_ptr<MachineCount> count);
  ~QemuMachine() override;
  QemuMachine(const QemuMachine&) = delete;
  QemuMachine& operator=(const QemuMachine&) = delete;

  std::shared_ptr<agent::GuestAgent> agent() const override;
  std::chrono::microseconds boot_time() const override { return boot_time_; }
  void on_exit(std::function<void(const MachineExit&)> handler) override;
  void assign(net::NetworkAssignment assignment) override;
  void set_egress_policy(net::EgressPolicy policy) override;
  void stop(std::function<void()> gone) override;
  std::string network_stats() const override;
  std::shared_ptr<vfs::FsServer> mounts() const override { return mounts_; }

 private:
  struct Watch;
  void release(std::function<void()> gone);

  std::shared_ptr<Vm> vm_;
  std::shared_ptr<net::SandboxNetwork> network_;
  std::shared_ptr<vfs::FsServer> mounts_;
  std::string record_id_;
  std::shared_ptr<service::RuntimeRecords> records_;
  std::shared_ptr<MachineCount> count_;
  std::shared_ptr<Watch> watch_;
  std::chrono::microseconds boot_time_;
  bool released_ = false;
};

}  // namespace sandboxd::vm
