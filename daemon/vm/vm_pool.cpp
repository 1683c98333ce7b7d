#include "daemon/vm/vm_pool.hpp"

#include <spdlog/spdlog.h>

#include "daemon/service/runtime_dir.hpp"
#include "daemon/vm/guest_image.hpp"

namespace sandboxd::vm {

namespace {
constexpr unsigned kFailuresBeforePause = 3;
constexpr std::chrono::seconds kRefillPause{30};
}  // namespace

VmPool::VmPool(boost::asio::io_context& io, VmLauncher& launcher, service::RuntimeDir* runtime, PoolSettings settings)
    : io_(io), launcher_(launcher), runtime_(runtime), settings_(std::move(settings)), retry_timer_(io) {}

VmPool::~VmPool() {
  *alive_ = false;
  for (auto& [shape, slot] : slots_) {
    for (auto& r : slot.ready) r.machine.release(nullptr);
  }
}

void VmPool::keep_warm(const PoolShape& shape) {
  slots_[shape].warm = true;
  fill(shape);
}

std::size_t VmPool::ready(const PoolShape& shape) const {
  auto it = slots_.find(shape);
  return it == slots_.end() ? 0 : it->second.ready.size();
}

void VmPool::acquire(const PoolShape& shape, Acquired done) {
  if (stopped_) {
    done(Unexpected{std::string("the daemon is shutting down")}, false);
    return;
  }
  auto& slot = slots_[shape];
  if (!slot.ready.empty()) {
    WarmVm machine = std::move(slot.ready.front().machine);
    slot.ready.pop_front();
    fill(shape);
    done(std::move(machine), true);
    return;
  }
  slot.waiters.push_back(std::move(done));
  fill(shape);
}

void VmPool::fill(const PoolShape& shape) {
  if (stopped_) return;
  auto& slot = slots_[shape];
  unsigned target = (slot.warm ? settings_.warm_per_shape : 0) + static_cast<unsigned>(slot.waiters.size());
  while (slot.ready.size() + slot.booting < target) {
    // Waiting creates always get their boot; refills share a small budget
    // and pause after repeated failures instead of looping on a broken image.
    bool for_waiter = slot.booting < slot.waiters.size();
    bool refill_allowed = booting_total_ < settings_.max_parallel_refills && slot.consecutive_failures < kFailuresBeforePause;
    if (!for_waiter && !refill_allowed) break;
    boot(shape);
  }
}

void VmPool::boot(const PoolShape& shape) {
  auto& slot = slots_[shape];
  ++slot.booting;
  ++booting_total_;
  auto image = find_guest_image(shape.image, settings_.image_roots);
  if (!image) {
    auto message = image.error();
    boost::asio::post(io_, [this, alive = alive_, shape, message] {
      if (*alive) booted(shape, Unexpected{message});
    });
    return;
  }
  VmSpec spec;
  spec.image = *image;
  spec.qemu_binary = settings_.qemu_binary;
  spec.cpus = shape.cpus;
  spec.memory_mib = shape.memory_mib;
  spec.tsc_khz = settings_.tsc_khz;
  spec.network = settings_.network;
  spec.mtu = settings_.mtu;
  std::string record_id = "vm-" + std::to_string(::getpid()) + "-" + std::to_string(next_serial_++);
  auto network = std::make_shared<std::shared_ptr<net::SandboxNetwork>>();
  spec.on_spawned = [this, network, record_id](Vm& vm) {
    if (runtime_) {
      service::SandboxRecord record;
      record.sandbox_id = record_id;
      record.qemu_pid = vm.process().pid();
      record.qemu_start_ticks = service::process_start_ticks(vm.process().pid());
      if (auto r = runtime_->record(record); !r) spdlog::warn("runtime record for {}: {}", record_id, r.error());
    }
    if (vm.spec().network != NetworkMode::kStack) return;
    if (*network) (*network)->stop();
    *network = net::SandboxNetwork::start(std::move(vm.network_link()), settings_.stack, settings_.waiting_policy());
  };
  launcher_.launch(spec, [this, alive = alive_, shape, network, record_id](Expected<std::shared_ptr<Vm>, BootError> r) {
    if (!*alive) return;
    if (!r) {
      if (*network) (*network)->stop();
      if (runtime_) runtime_->forget(record_id);
      booted(shape, Unexpected{r.error().message});
      return;
    }
    booted(shape, WarmVm{*r, *network, record_id, runtime_});
  });
}

void VmPool::booted(const PoolShape& shape, Expected<WarmVm, std::string> result) {
  auto& slot = slots_[shape];
  --slot.booting;
  --booting_total_;
  if (!result) {
    ++boot_failures_;
    ++slot.consecutive_failures;
    spdlog::warn("a VM for image {} did not boot: {}", shape.image, result.error().substr(0, 2000));
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
  WarmVm machine = std::move(*result);
  if (stopped_) {
    ++releasing_;
    machine.release([this, alive = alive_] {
      if (!*alive) return;
      --releasing_;
      check_stopped();
    });
    return;
  }
  if (!slot.waiters.empty()) {
    auto waiter = std::move(slot.waiters.front());
    slot.waiters.pop_front();
    waiter(std::move(machine), false);
    fill(shape);
    return;
  }
  std::uint64_t serial = next_serial_++;
  machine.vm->on_exit([this, alive = alive_, shape, serial](const std::string& why) {
    if (*alive) ready_vm_exited(shape, serial, why);
  });
  slot.ready.push_back({std::move(machine), serial});
  fill(shape);
}

void VmPool::ready_vm_exited(const PoolShape& shape, std::uint64_t serial, const std::string& why) {
  // The handler stays registered after the VM became a sandbox; only a VM
  // still waiting here is the pool's business.
  auto& slot = slots_[shape];
  for (auto it = slot.ready.begin(); it != slot.ready.end(); ++it) {
    if (it->serial != serial) continue;
    spdlog::warn("a warm VM exited while waiting in the pool: {}", why.substr(0, 500));
    it->machine.release(nullptr);
    slot.ready.erase(it);
    fill(shape);
    return;
  }
}

void VmPool::stop(std::function<void()> done) {
  stopped_ = true;
  stop_done_ = std::move(done);
  retry_timer_.cancel();
  for (auto& [shape, slot] : slots_) {
    auto waiters = std::move(slot.waiters);
    for (auto& w : waiters) w(Unexpected{std::string("the daemon is shutting down")}, false);
    for (auto& r : slot.ready) {
      ++releasing_;
      r.machine.release([this, alive = alive_] {
        if (!*alive) return;
        --releasing_;
        check_stopped();
      });
    }
    slot.ready.clear();
  }
  check_stopped();
}

void VmPool::check_stopped() {
  if (!stopped_ || releasing_ > 0 || booting_total_ > 0 || !stop_done_) return;
  auto done = std::move(stop_done_);
  done();
}

}  // namespace sandboxd::vm
