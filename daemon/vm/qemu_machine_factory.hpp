// The daemon's MachineFactory: everything spawning a sandbox machine means,
// in one place. For each machine it finds the image, boots QEMU through the
// launcher, writes the runtime record as soon as QEMU runs (on the blocking
// worker; the machine is handed out only once it is written), attaches the
// sandbox network the moment QEMU starts (the guest asks DHCP before it says
// hello) with the waiting policy until a sandbox assigns its own, and on a
// failed boot releases all of it before reporting. Every machine gets the
// "sandbox.fs" port for host-controlled mounts (daemon/vfs), served as soon
// as it boots; the providers' blocking file work runs on the factory's
// worker threads. A shape with a disk (disk_file_mib) gets its writable
// layer made on those threads too (writable_disk.hpp), before QEMU starts.
//
// Used by the daemon's pool and by `sandboxd-host run` alike; `run` keeps no
// runtime records (records is null).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/stack/stack_config.hpp"
#include "daemon/service/runtime_records.hpp"
#include "daemon/vm/launcher.hpp"
#include "daemon/vm/machine_factory.hpp"
#include "daemon/vm/network_mode.hpp"
#include "daemon/vm/qemu_machine.hpp"

namespace sandboxd::vm {

struct QemuMachineSettings {
  std::string qemu_binary;
  std::vector<std::filesystem::path> image_roots;
  std::optional<std::uint64_t> tsc_khz;
  NetworkMode network = NetworkMode::kStack;
  net::StackConfig stack;  // its mtu is the NIC's
  // The policy of a machine's network until a sandbox assigns its own.
  net::EgressPolicy waiting_policy;
  // Where file-backed writable layers are made (writable_disk.hpp).
  std::filesystem::path disk_dir;
};

class QemuMachineFactory final : public MachineFactory {
 public:
  QemuMachineFactory(boost::asio::io_context& io, VmLauncher& launcher, QemuMachineSettings settings,
                     std::shared_ptr<service::RuntimeRecords> records);
  ~QemuMachineFactory() override { *alive_ = false; }

  void create(const MachineShape& shape, Created done) override;

  // Machines created and not yet gone; `done` runs when there are none.
  std::size_t live() const { return count_->live; }
  void when_none_live(std::function<void()> done);

 private:
  struct Boot;
  void launch(VmSpec spec, std::shared_ptr<Boot> boot);

  boost::asio::io_context& io_;
  VmLauncher& launcher_;
  QemuMachineSettings settings_;
  std::shared_ptr<service::RuntimeRecords> records_;
  std::shared_ptr<MachineCount> count_ = std::make_shared<MachineCount>();
  std::uint64_t next_serial_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // Last, so that it is joined first: provider calls and disks still queued
  // finish before anything else the factory holds goes.
  boost::asio::thread_pool workers_{2};
};

}  // namespace sandboxd::vm
