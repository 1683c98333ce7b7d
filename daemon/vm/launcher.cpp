#include "daemon/vm/launcher.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <spdlog/spdlog.h>

namespace sandboxd::vm {

std::filesystem::path default_cache_dir() {
  if (::geteuid() == 0) return "/var/cache/sandboxd";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "sandboxd";
  if (const char* home = std::getenv("HOME"); home && *home) return std::filesystem::path(home) / ".cache" / "sandboxd";
  return "/tmp/sandboxd-cache";
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(ss, dir, ':');) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

VmLauncher::VmLauncher(boost::asio::io_context& io, LauncherSettings settings)
    : io_(io), settings_(std::move(settings)) {}

bool VmLauncher::seccomp_supported(const std::string& qemu_binary) {
  if (!seccomp_) {
    // QEMU lists -sandbox in its help only when built with seccomp.
    std::string cmd = "'" + qemu_binary + "' -help 2>/dev/null";
    seccomp_ = false;
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
      char line[512];
      while (std::fgets(line, sizeof line, f)) {
        if (std::string_view(line).rfind("-sandbox", 0) == 0) seccomp_ = true;
      }
      ::pclose(f);
    }
  }
  return *seccomp_;
}

Accelerator VmLauncher::accelerator(const VmSpec& probe_spec) {
  if (accelerator_) return *accelerator_;
  auto cache_file = settings_.cache_dir / "accelerator";
  auto key = accelerator_cache_key(probe_spec.qemu_binary);
  accelerator_ = choose_accelerator(settings_.accelerator, cache_file, key, kvm_device_usable, [&](Accelerator a) {
    // A probe boot on its own io_context: this runs once per host, before any
    // sandbox exists, so blocking here blocks nothing else.
    spdlog::info("probing whether {} boots a guest here (once per host)", to_string(a));
    boost::asio::io_context probe_io;
    VmSpec spec = probe_spec;
    spec.accelerator = a;
    spec.boot_deadline = settings_.kvm_probe_deadline;
    spec.network = NetworkMode::kNone;  // the probe asks only whether the guest boots; no DHCP wait
    spec.on_spawned = nullptr;
    spec.seccomp_sandbox = seccomp_supported(spec.qemu_binary);
    bool ok = false;
    std::shared_ptr<Vm> booted;
    Vm::boot(probe_io, spec, [&](Expected<std::shared_ptr<Vm>, BootError> r) {
      ok = r.has_value();
      if (ok) booted = *r;
      else spdlog::info("{} probe failed: {}", to_string(a), r.error().message.substr(0, 300));
    });
    probe_io.run_for(settings_.kvm_probe_deadline + std::chrono::seconds(2));
    if (booted) booted->kill();
    spdlog::info("accelerator verdict: {}", ok ? to_string(a) : "tcg");
    return ok;
  });
  return *accelerator_;
}

void VmLauncher::launch(VmSpec spec, Vm::BootCallback done) {
  spec.accelerator = accelerator(spec);
  spec.seccomp_sandbox = spec.seccomp_sandbox && seccomp_supported(spec.qemu_binary);
  attempt(std::move(spec), 1, std::move(done));
}

void VmLauncher::attempt(VmSpec spec, unsigned attempt_no, Vm::BootCallback done) {
  Vm::boot(io_, spec, [this, spec, attempt_no, done = std::move(done)](Expected<std::shared_ptr<Vm>, BootError> r) mutable {
    if (r || r.error().kind != BootFailure::kDeadline || attempt_no >= settings_.boot_attempts) {
      done(std::move(r));
      return;
    }
    ++boot_hangs_;
    if (spec.accelerator == Accelerator::kKvm && !settings_.accelerator.fixed) {
      spdlog::warn("KVM boot missed its deadline; using TCG from now on");
      record_accelerator_failure(settings_.cache_dir / "accelerator", accelerator_cache_key(spec.qemu_binary),
                                 Accelerator::kKvm);
      accelerator_ = Accelerator::kTcg;
      spec.accelerator = Accelerator::kTcg;
    } else {
      spdlog::warn("guest boot hung (attempt {} of {}), retrying", attempt_no, settings_.boot_attempts);
    }
    attempt(std::move(spec), attempt_no + 1, std::move(done));
  });
}

}  // namespace sandboxd::vm
