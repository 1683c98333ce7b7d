// Where sandboxes get their machines: warm ones from inventory, or a boot of
// their own. The daemon's pool is VmPool (vm_pool.hpp); tests give their own.
#pragma once

#include <functional>
#include <string>

#include "daemon/vm/machine.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::vm {

class MachinePool {
 public:
  using Acquired = std::function<void(Expected<MachinePtr, std::string> machine, bool from_pool)>;
  virtual ~MachinePool() = default;

  // Keeps machines of this shape warm from now on.
  virtual void keep_warm(const MachineShape& shape) = 0;
  // A machine of this shape: reports exactly once, possibly before returning.
  virtual void acquire(const MachineShape& shape, Acquired done) = 0;
  // No more machines; waiting acquirers fail. `done` runs once every machine
  // the pool held or was booting is gone.
  virtual void stop(std::function<void()> done) = 0;
};

}  // namespace sandboxd::vm
