#include "daemon/vm/vm_pool.hpp"

#include <spdlog/spdlog.h>

namespace sandboxd::vm {

VmPool::VmPool(boost::asio::io_context& io, MachineFactory& factory, PoolConfig config)
    : factory_(factory), config_(config), retry_timer_(io) {}

// Ready machines release themselves as they are destroyed with the slots.
VmPool::~VmPool() { *alive_ = false; }

void VmPool::keep_warm(const MachineShape& shape) {
  slots_[shape].warm = true;
  fill(shape);
}

std::size_t VmPool::ready(const MachineShape& shape) const {
  auto it = slots_.find(shape);
  return it == slots_.end() ? 0 : it->second.ready.size();
}

void VmPool::acquire(const MachineShape& shape, Acquired done) {
  if (stopped_) {
    done(Unexpected{std::string("the daemon is shutting down")}, false);
    return;
  }
  auto& slot = slots_[shape];
  if (!slot.ready.empty()) {
    MachinePtr machine = std::move(slot.ready.front().machine);
    slot.ready.pop_front();
    fill(shape);
    done(std::move(machine), true);
    return;
  }
  slot.waiters.push_back(std::move(done));
  fill(shape);
}

void VmPool::fill(const MachineShape& shape) {
  if (stopped_) return;
  auto& slot = slots_[shape];
  unsigned target = (slot.warm ? config_.warm_per_shape : 0) + static_cast<unsigned>(slot.waiters.size());
  while (slot.ready.size() + slot.booting < target) {
    // Waiting creates always get their boot; refills share a small budget
    // and pause after repeated failures instead of looping on a broken image.
    bool for_waiter = slot.booting < slot.waiters.size();
    bool refill_allowed =
        booting_total_ < config_.max_parallel_refills && slot.consecutive_failures < kFailuresBeforePause;
    if (!for_waiter && !refill_allowed) break;
    boot(shape);
  }
}

void VmPool::boot(const MachineShape& shape) {
  ++slots_[shape].booting;
  ++booting_total_;
  factory_.create(shape, [this, alive = alive_, shape](Expected<MachinePtr, std::string> r) {
    if (*alive) booted(shape, std::move(r));
  });
}

void VmPool::booted(const MachineShape& shape, Expected<MachinePtr, std::string> result) {
  auto& slot = slots_[shape];
  --slot.booting;
  --booting_total_;
  if (!result) {
    ++boot_failures_;
    ++slot.consecutive_failures;
    spdlog::warn("a machine for image {} did not boot: {}", shape.image, result.error().substr(0, 2000));
    if (!slot.waiters.empty()) {
      auto waiter = std::move(slot.waiters.front());
      slot.waiters.pop_front();
      waiter(Unexpected{result.error()}, false);
    }
    if (slot.consecutive_failures >= kFailuresBeforePause) {
      retry_timer_.expires_after(kRefillPause);
      retry_timer_.async_wait([this, alive = alive_, shape](const boost::system::error_code& ec) {
        if (ec || !*alive) return;
        slots_[shape].consecutive_failures = 0;
        fill(shape);
      });
    }
    check_stopped();
    fill(shape);
    return;
  }
  slot.consecutive_failures = 0;
  MachinePtr machine = std::move(*result);
  if (stopped_) return release(std::move(machine));
  if (!slot.waiters.empty()) {
    auto waiter = std::move(slot.waiters.front());
    slot.waiters.pop_front();
    waiter(std::move(machine), false);
    fill(shape);
    return;
  }
  std::uint64_t serial = next_serial_++;
  // Replaced by the sandbox's own handler once the machine leaves the pool.
  machine->on_exit([this, alive = alive_, shape, serial](const MachineExit& exit) {
    if (*alive) ready_machine_ended(shape, serial, exit.report);
  });
  slot.ready.push_back({std::move(machine), serial});
  fill(shape);
}

void VmPool::ready_machine_ended(const MachineShape& shape, std::uint64_t serial, const std::string& why) {
  auto& slot = slots_[shape];
  for (auto it = slot.ready.begin(); it != slot.ready.end(); ++it) {
    if (it->serial != serial) continue;
    spdlog::warn("a warm machine ended while waiting in the pool: {}", why.substr(0, 500));
    MachinePtr machine = std::move(it->machine);
    slot.ready.erase(it);
    release(std::move(machine));
    fill(shape);
    return;
  }
}

void VmPool::release(MachinePtr machine) {
  ++releasing_;
  Machine* raw = machine.get();
  // The machine stays owned by its own completion until it is gone.
  auto owned = std::make_shared<MachinePtr>(std::move(machine));
  raw->stop([this, alive = alive_, owned] {
    if (!*alive) return;
    --releasing_;
    check_stopped();
  });
}

void VmPool::stop(std::function<void()> done) {
  stopped_ = true;
  stop_done_ = std::move(done);
  retry_timer_.cancel();
  for (auto& [shape, slot] : slots_) {
    auto waiters = std::move(slot.waiters);
    for (auto& w : waiters) w(Unexpected{std::string("the daemon is shutting down")}, false);
    auto ready = std::move(slot.ready);
    for (auto& r : ready) release(std::move(r.machine));
  }
  check_stopped();
}

void VmPool::check_stopped() {
  if (!stopped_ || releasing_ > 0 || booting_total_ > 0 || !stop_done_) return;
  auto done = std::move(stop_done_);
  done();
}

}  // namespace sandboxd::vm
