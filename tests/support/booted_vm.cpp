#include "booted_vm.hpp"

#include "run_until.hpp"

#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/host_tsc.hpp"

namespace sandboxd::testing {

vm::VmSpec vm_spec_for(const std::string& image_name) {
  auto image = vm::find_guest_image(image_name, vm::default_image_roots());
  if (!image) throw std::runtime_error(image.error());
  vm::VmSpec spec;
  spec.image = *image;
  spec.qemu_binary = vm::find_program("qemu-system-x86_64");
  if (spec.qemu_binary.empty()) throw std::runtime_error("qemu-system-x86_64 not found");
  spec.tsc_khz = vm::host_tsc_khz();
  return spec;
}

BootedVm::BootedVm(BootOptions options) : launcher_(io_, {vm::AcceleratorRequest{}, vm::default_cache_dir()}, blocking_) {
  vm::VmSpec spec = vm_spec_for(options.image);
  spec.memory_mib = options.memory_mib;
  spec.cpus = options.cpus;
  spec.extra_ports = options.extra_ports;
  spec.network = options.network;
  spec.on_spawned = options.on_spawned;
  spec.extra_qemu_args = options.extra_qemu_args;
  spec.extra_kernel_args = options.extra_kernel_args;
  std::string error;
  launcher_.launch(spec, [&](Expected<std::shared_ptr<vm::Vm>, vm::BootError> r) {
    if (r) vm_ = *r;
    else error = r.error().message;
  });
  if (!run_until([&] { return vm_ != nullptr || !error.empty(); }) || !vm_)
    throw std::runtime_error("VM did not boot: " + error);
}

BootedVm::~BootedVm() {
  if (vm_) vm_->kill();
}

bool BootedVm::run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  return testing::run_until(io_, done, limit);
}

std::uint32_t BootedVm::start(ExecOutcome& outcome, std::vector<std::string> argv, bool keep_output) {
  agent::ExecRequest request;
  request.argv = std::move(argv);
  auto& agent = vm_->agent();
  // The id is only known after start_exec returns; the output handler reads it
  // through a slot that is filled in right after.
  std::uint32_t* id_slot = &ids_.emplace_back(0);
  std::uint32_t id = agent.start_exec(
      request, {
                   .on_started = [](std::uint32_t) {},
                   .on_output =
                       [&outcome, &agent, id_slot, keep_output](protocol::Stream s, Bytes&& data) {
                         if (s == protocol::Stream::kStdout) outcome.out_bytes += data.size();
                         if (keep_output) (s == protocol::Stream::kStdout ? outcome.out : outcome.err) += as_chars(data);
                         agent.ack_output(*id_slot, static_cast<std::uint32_t>(data.size()));
                       },
                   .on_stdin_credit = [] {},
                   .on_exit = [&outcome](const protocol::Exit& e) { outcome.exit = e; },
                   .on_failed = [&outcome](const std::string& why) { outcome.failure = why; },
               });
  *id_slot = id;
  return id;
}

ExecOutcome BootedVm::run(std::vector<std::string> argv, std::chrono::milliseconds limit) {
  ExecOutcome outcome;
  start(outcome, std::move(argv));
  if (!run_until([&] { return outcome.done(); }, limit)) throw std::runtime_error("exec did not end in time");
  return outcome;
}

}  // namespace sandboxd::testing
