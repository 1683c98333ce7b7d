// A booted VM with everything the host holds for it: QEMU, the guest's
// network, and the runtime record that lets a restarted daemon clean up
// after a crash. Owned by the pool while it waits, then by one sandbox.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "daemon/net/sandbox_network.hpp"
#include "daemon/vm/vm.hpp"

namespace sandboxd::service {
class RuntimeDir;
}

namespace sandboxd::vm {

struct WarmVm {
  std::shared_ptr<Vm> vm;
  std::shared_ptr<net::SandboxNetwork> network;  // null unless the network mode is stack
  std::string record_id;                          // its record in the runtime dir
  service::RuntimeDir* runtime = nullptr;

  // Kills QEMU, stops the network, forgets the runtime record; `done` runs
  // once QEMU is gone. Safe to call on an empty WarmVm.
  void release(std::function<void()> done);
};

}  // namespace sandboxd::vm
