// Boots VMs with the right accelerator and survives the boots that fail.
//
// What the host can do is found out once, before the first boot, without
// blocking the event loop: whether QEMU has seccomp (its help text, read on
// the blocking worker), and which accelerator works (accelerator.hpp: a
// cached verdict, read on the worker, or a probe boot run on the loop like
// any other boot). Launches asked for meanwhile wait for that answer.
//
// A boot that misses its deadline is retried: under KVM that means KVM does
// not really work here, so the verdict is recorded and the retry uses TCG;
// under TCG a rare early-boot hang is retried as it is, and counted.
#pragma once

#include <boost/asio/io_context.hpp>
#include <deque>
#include <filesystem>
#include <functional>
#include <optional>

#include "daemon/service/blocking_work.hpp"
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
// Whether this QEMU was built with seccomp (-sandbox in its help). Runs QEMU:
// call it off the event loop.
bool qemu_has_seccomp(const std::string& qemu_binary);

class VmLauncher {
 public:
  VmLauncher(boost::asio::io_context& io, LauncherSettings settings, service::BlockingWork& blocking);
  ~VmLauncher();

  // Boots `spec` (its accelerator field is filled in here). The first call
  // finds out what the host can do, with `spec`'s image for a probe boot.
  void launch(VmSpec spec, Vm::BootCallback done);

  // Known once the first launch has been prepared.
  std::optional<Accelerator> accelerator() const { return accelerator_; }
  unsigned boot_hangs() const { return boot_hangs_; }

 private:
  struct HostFacts;
  void prepare(const VmSpec& probe_spec);
  void probe_kvm(const VmSpec& probe_spec, std::string cache_key);
  void prepared(Accelerator accelerator);
  void attempt(VmSpec spec, unsigned attempt, Vm::BootCallback done);

  boost::asio::io_context& io_;
  LauncherSettings settings_;
  service::BlockingWork& blocking_;
  std::optional<Accelerator> accelerator_;
  bool seccomp_ = false;
  bool preparing_ = false;
  std::deque<std::pair<VmSpec, Vm::BootCallback>> waiting_;
  unsigned boot_hangs_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sandboxd::vm
