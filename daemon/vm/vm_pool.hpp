// Warm VMs, per image and shape, waiting to become sandboxes.
//
// A sandbox.create takes a ready VM in microseconds; the pool then boots a
// replacement in the background. A create that finds none waits for the
// next VM of its shape to finish booting (one is started for it at once), so
// a burst of creates boots in parallel instead of queueing behind refills.
// A VM leaves the pool once, for one sandbox, and never comes back.
//
// Every VM gets a runtime record as soon as QEMU runs, so a daemon killed
// mid-boot still finds and removes it at its next start.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <compare>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/stack/stack_config.hpp"
#include "daemon/vm/launcher.hpp"
#include "daemon/vm/warm_vm.hpp"

namespace sandboxd::vm {

struct PoolShape {
  std::string image;
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  auto operator<=>(const PoolShape&) const = default;
};

struct PoolSettings {
  unsigned warm_per_shape = 2;
  // Background refills booting at once (boots under TCG are CPU-bound).
  unsigned max_parallel_refills = 2;
  std::string qemu_binary;
  std::vector<std::filesystem::path> image_roots;
  NetworkMode network = NetworkMode::kStack;
  unsigned mtu = kDefaultMtu;
  std::optional<std::uint64_t> tsc_khz;
  net::StackConfig stack;
  // Pooled VMs deny all egress until a sandbox gives them its policy.
  std::function<net::EgressPolicy()> waiting_policy;
};

class VmPool {
 public:
  using Acquired = std::function<void(Expected<WarmVm, std::string> vm, bool from_pool)>;

  VmPool(boost::asio::io_context& io, VmLauncher& launcher, service::RuntimeDir* runtime, PoolSettings settings);
  ~VmPool();

  // Keeps warm_per_shape VMs of this shape ready from now on.
  void keep_warm(const PoolShape& shape);
  void acquire(const PoolShape& shape, Acquired done);
  // No more boots; ready VMs are released and waiting acquirers fail.
  // `done` runs once every VM of the pool is gone.
  void stop(std::function<void()> done);

  std::size_t ready(const PoolShape& shape) const;
  std::size_t booting() const { return booting_total_; }
  unsigned boot_failures() const { return boot_failures_; }

 private:
  struct Ready {
    WarmVm machine;
    std::uint64_t serial = 0;
  };
  struct Slot {
    std::deque<Ready> ready;
    std::deque<Acquired> waiters;
    unsigned booting = 0;
    unsigned consecutive_failures = 0;
    bool warm = false;
  };

  void fill(const PoolShape& shape);
  void boot(const PoolShape& shape);
  void booted(const PoolShape& shape, Expected<WarmVm, std::string> result);
  void ready_vm_exited(const PoolShape& shape, std::uint64_t serial, const std::string& why);
  void check_stopped();

  boost::asio::io_context& io_;
  VmLauncher& launcher_;
  service::RuntimeDir* runtime_;
  PoolSettings settings_;
  std::map<PoolShape, Slot> slots_;
  unsigned booting_total_ = 0;
  unsigned boot_failures_ = 0;
  std::uint64_t next_serial_ = 1;
  bool stopped_ = false;
  unsigned releasing_ = 0;
  std::function<void()> stop_done_;
  boost::asio::steady_timer retry_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sandboxd::vm
