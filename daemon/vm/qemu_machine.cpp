#include "daemon/vm/qemu_machine.hpp"

#include <boost/asio/post.hpp>
#include <optional>

#include <spdlog/spdlog.h>

namespace sandboxd::vm {

void MachineCount::released() {
  if (--live > 0) return;
  auto waiters = std::move(when_none);
  for (auto& w : waiters) w();
}

// What reports the machine's own end; shared with the VM's handlers, which
// may fire after the machine object is gone (they then find no handler).
struct QemuMachine::Watch {
  explicit Watch(boost::asio::any_io_executor executor) : grace(std::move(executor)) {}
  std::function<void(const MachineExit&)> handler;
  std::optional<MachineExit> unheard;  // an end that came before anyone asked
  boost::asio::steady_timer grace;
  bool reported = false;
  bool released = false;
  void report(MachineExit exit) {
    if (reported || released) return;
    reported = true;
    grace.cancel();
    if (auto h = std::move(handler)) h(exit);
    else unheard = std::move(exit);
  }
};

QemuMachine::QemuMachine(boost::asio::any_io_executor executor, std::shared_ptr<Vm> vm,
                         std::shared_ptr<net::SandboxNetwork> network, std::shared_ptr<vfs::FsServer> mounts,
                         std::string record_id,
                         std::shared_ptr<service::RuntimeRecords> records, std::shared_ptr<MachineCount> count)
    : vm_(std::move(vm)),
      network_(std::move(network)),
      mounts_(std::move(mounts)),
      record_id_(std::move(record_id)),
      records_(std::move(records)),
      count_(std::move(count)),
      watch_(std::make_shared<Watch>(std::move(executor))),
      boot_time_(vm_->boot_time()) {
  ++count_->live;
  std::weak_ptr<Watch> watch = watch_;
  vm_->on_exit([watch](const std::string& report) {
    if (auto w = watch.lock()) w->report({MachineExit::Kind::kQemuExited, report});
  });
  std::weak_ptr<Vm> weak_vm = vm_;
  vm_->on_agent_lost([watch, weak_vm](const std::string& why) {
    auto w = watch.lock();
    if (!w) return;
    // The channel also closes when QEMU exits; give that exit the chance to
    // be the one reported.
    w->grace.expires_after(kGuestLostGrace);
    w->grace.async_wait([watch, weak_vm, why](const boost::system::error_code& ec) {
      auto w2 = watch.lock();
      if (ec || !w2) return;
      if (auto v = weak_vm.lock()) v->kill();
      w2->report({MachineExit::Kind::kGuestLost, "the guest agent's channel closed (" + why + ") while QEMU ran"});
    });
  });
}

QemuMachine::~QemuMachine() { release(nullptr); }

std::shared_ptr<agent::GuestAgent> QemuMachine::agent() const { return vm_ ? vm_->agent_handle().lock() : nullptr; }

void QemuMachine::on_exit(std::function<void(const MachineExit&)> handler) {
  if (!watch_->unheard) {
    watch_->handler = std::move(handler);
    return;
  }
  // Not from inside the caller, which may still be setting itself up.
  boost::asio::post(watch_->grace.get_executor(), [watch = watch_, handler = std::move(handler)] {
    if (!watch->released && watch->unheard) handler(*watch->unheard);
  });
}

void QemuMachine::assign(net::NetworkAssignment assignment) {
  if (network_) network_->assign(std::move(assignment));
}

void QemuMachine::set_egress_policy(net::EgressPolicy policy) {
  if (network_) network_->set_policy(std::move(policy));
}

void QemuMachine::stop(std::function<void()> gone) { release(std::move(gone)); }

std::string QemuMachine::network_stats() const { return network_ ? network_->stats_text() : std::string(); }

void QemuMachine::release(std::function<void()> gone) {
  if (released_) {
    if (gone) gone();
    return;
  }
  released_ = true;
  watch_->released = true;  // an end we cause is not reported as the machine's own
  watch_->handler = nullptr;
  watch_->grace.cancel();
  if (network_) network_->stop();
  network_.reset();
  if (mounts_) mounts_->stop();
  mounts_.reset();
  auto forget = [records = records_, id = record_id_, count = count_, gone = std::move(gone)]() mutable {
    auto finish = [count, gone = std::move(gone)]() mutable {
      count->released();
      if (gone) gone();
    };
    if (records && !id.empty()) records->forget(id, std::move(finish));
    else finish();
  };
  auto vm = std::move(vm_);
  vm->kill();
  // The handler holds the VM until QEMU is reaped.
  vm->process().on_exit([vm, forget = std::move(forget)]() mutable { forget(); });
}

}  // namespace sandboxd::vm
