// A real VM booted for a test or benchmark, driven synchronously: each call
// runs the io_context until its outcome is known or a deadline passes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/vm/launcher.hpp"

namespace sandboxd::testing {

struct ExecOutcome {
  std::string out;
  std::string err;
  std::uint64_t out_bytes = 0;  // counted even when not kept
  std::optional<protocol::Exit> exit;
  std::string failure;
  bool done() const { return exit.has_value() || !failure.empty(); }
};

// Boot parameters a test may change; the image comes from SANDBOXD_IMAGES.
struct BootOptions {
  std::string image = "mini";  // the initramfs image: the quickest to boot
  unsigned memory_mib = 256;
  unsigned cpus = 1;
  std::vector<std::string> extra_ports;
  vm::NetworkMode network = vm::NetworkMode::kNone;
  std::function<void(vm::Vm&)> on_spawned;
  // For benchmarks against a peer device: vm.hpp's VmSpec has the same two.
  std::vector<std::string> extra_qemu_args;
  std::string extra_kernel_args;
};

class BootedVm {
 public:
  explicit BootedVm(BootOptions options = {});
  ~BootedVm();

  vm::Vm& vm() { return *vm_; }
  boost::asio::io_context& io() { return io_; }

  // Runs the io_context until `done()` or `limit`; false on timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(120));

  // Starts an exec whose outcome is collected into `outcome` (which must
  // outlive it). Output is acknowledged as it arrives; with keep_output
  // false only its size is counted.
  std::uint32_t start(ExecOutcome& outcome, std::vector<std::string> argv, bool keep_output = true);
  // Starts and waits; throws if it does not end within `limit`.
  ExecOutcome run(std::vector<std::string> argv, std::chrono::milliseconds limit = std::chrono::seconds(120));

 private:
  boost::asio::io_context io_;
  service::BlockingWork blocking_{io_.get_executor()};
  vm::VmLauncher launcher_;
  std::shared_ptr<vm::Vm> vm_;
  std::deque<std::uint32_t> ids_;
};

// The VmSpec for image `name` with this host's QEMU; throws when either
// cannot be found.
vm::VmSpec vm_spec_for(const std::string& image_name);

}  // namespace sandboxd::testing
