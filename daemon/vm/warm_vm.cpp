#include "daemon/vm/warm_vm.hpp"

#include "daemon/service/runtime_dir.hpp"

namespace sandboxd::vm {

void WarmVm::release(std::function<void()> done) {
  if (network) network->stop();
  auto machine = std::move(vm);
  auto forget = [runtime = runtime, id = record_id, done = std::move(done)] {
    if (runtime && !id.empty()) runtime->forget(id);
    if (done) done();
  };
  network.reset();
  record_id.clear();
  if (!machine) {
    forget();
    return;
  }
  machine->kill();
  machine->process().on_exit([machine, forget = std::move(forget)] { forget(); });
}

}  // namespace sandboxd::vm
