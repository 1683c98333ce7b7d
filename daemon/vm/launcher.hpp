// Boots VMs with the right accelerator and survives the boots that fail.
//
// The accelerator is chosen once, on first use (see accelerator.hpp). A boot
// that misses its deadline is retried: under KVM that means KVM does not
// really work here, so the verdict is recorded and the retry uses TCG; under
// TCG a rare early-boot hang is retried as it is, and counted.
#pragma once

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <functional>
#include <optional>

#include "daemon/vm/accelerator.hpp"
#include "daemon/vm/vm.hpp"

namespace sandboxd::vm {

struct LauncherSettings {
  AcceleratorRequest accelerator;
  std::filesystem::path cache_dir;  // holds the accelerator verdict
  unsigned boot_attempts = 3;
  std::chrono::milliseconds kvm_probe_deadline{8000};
};

// Default cache dir: /var/cache/sandboxd as root, else $XDG_CACHE_HOME/sandboxd.
std::filesystem::path default_cache_dir();
// Resolves a program name through $PATH; empty when not found.
std::string find_program(const std::string& name);

class VmLauncher {
 public:
  VmLauncher(boost::asio::io_context& io, LauncherSettings settings);

  // The accelerator new VMs get. The first call may boot a probe VM.
  Accelerator accelerator(const VmSpec& probe_spec);
  // Boots `spec` (its accelerator field is filled in here).
  void launch(VmSpec spec, Vm::BootCallback done);

  unsigned boot_hangs() const { return boot_hangs_; }
  bool seccomp_supported(const std::string& qemu_binary);

 private:
  void attempt(VmSpec spec, unsigned attempt, Vm::BootCallback done);

  boost::asio::io_context& io_;
  LauncherSettings settings_;
  std::optional<Accelerator> accelerator_;
  std::optional<bool> seccomp_;
  unsigned boot_hangs_ = 0;
};

}  // namespace sandboxd::vm
