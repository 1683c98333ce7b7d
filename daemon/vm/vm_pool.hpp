// Warm machines, per image and shape, waiting to become sandboxes. Inventory
// only: where a machine comes from is the factory's business
// (machine_factory.hpp), what it becomes is the sandbox's.
//
// An acquire takes a ready machine in microseconds; the pool then asks the
// factory for a replacement in the background. An acquire that finds none
// waits for the next machine of its shape (one is started for it at once),
// so a burst of creates boots in parallel instead of queueing behind
// refills. A machine leaves the pool once, for one sandbox, and never comes
// back. A ready machine that ends while it waits is dropped and replaced.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "daemon/vm/machine_factory.hpp"
#include "daemon/vm/machine_pool.hpp"
#include "daemon/vm/pool_config.hpp"

namespace sandboxd::vm {

class VmPool final : public MachinePool {
 public:
  static constexpr unsigned kFailuresBeforePause = 3;
  static constexpr std::chrono::seconds kRefillPause{30};

  VmPool(boost::asio::io_context& io, MachineFactory& factory, PoolConfig config);
  ~VmPool() override;

  void keep_warm(const MachineShape& shape) override;
  void acquire(const MachineShape& shape, Acquired done) override;
  void stop(std::function<void()> done) override;

  std::size_t ready(const MachineShape& shape) const;
  std::size_t booting() const { return booting_total_; }
  unsigned boot_failures() const { return boot_failures_; }

 private:
  struct Ready {
    MachinePtr machine;
    std::uint64_t serial = 0;
  };
  struct Slot {
    std::deque<Ready> ready;
    std::deque<Acquired> waiters;
    unsigned booting = 0;
    unsigned consecutive_failures = 0;
    bool warm = false;
  };

  void fill(const MachineShape& shape);
  void boot(const MachineShape& shape);
  void booted(const MachineShape& shape, Expected<MachinePtr, std::string> result);
  void ready_machine_ended(const MachineShape& shape, std::uint64_t serial, const std::string& why);
  void release(MachinePtr machine);
  void check_stopped();

  MachineFactory& factory_;
  PoolConfig config_;
  std::map<MachineShape, Slot> slots_;
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
