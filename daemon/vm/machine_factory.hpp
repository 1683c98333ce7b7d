// Where machines come from: boots one of a given shape and reports it, or
// the reason it could not. The daemon's factory starts QEMU with everything a
// machine needs (qemu_machine_factory.hpp); tests give one that boots nothing.
#pragma once

#include <functional>
#include <string>

#include "daemon/vm/machine.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::vm {

class MachineFactory {
 public:
  using Created = std::function<void(Expected<MachinePtr, std::string>)>;
  virtual ~MachineFactory() = default;
  // Reports exactly once, possibly before returning.
  virtual void create(const MachineShape& shape, Created done) = 0;
};

}  // namespace sandboxd::vm
