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

bool qemu_has_seccomp(const std::string& qemu_binary) {
  // QEMU lists -sandbox in its help only when built with seccomp.
  std::string cmd = "'" + qemu_binary + "' -help 2>/dev/null";
  bool found = false;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
      if (std::string_view(line).rfind("-sandbox", 0) == 0) found = true;
    }
    ::pclose(f);
  }
  return found;
}

// What the worker finds out about the host before the first boot.
struct VmLauncher::HostFacts {
  bool seccomp = false;
  std::string cache_key;
  std::optional<Accelerator> decided;  // nullopt: a KVM probe boot must decide
};

VmLauncher::VmLauncher(boost::asio::io_context& io, LauncherSettings settings, service::BlockingWork& blocking)
    : io_(io), settings_(std::move(settings)), blocking_(blocking) {}

VmLauncher::~VmLauncher() { *alive_ = false; }

void VmLauncher::launch(VmSpec spec, Vm::BootCallback done) {
  if (accelerator_) {
    spec.accelerator = *accelerator_;
    spec.seccomp_sandbox = spec.seccomp_sandbox && seccomp_;
    attempt(std::move(spec), 1, std::move(done));
    return;
  }
  if (!preparing_) prepare(spec);
  waiting_.emplace_back(std::move(spec), std::move(done));
}

void VmLauncher::prepare(const VmSpec& probe_spec) {
  preparing_ = true;
  auto cache_file = settings_.cache_dir / "accelerator";
  blocking_.run(
      [qemu = probe_spec.qemu_binary, request = settings_.accelerator, cache_file] {
        HostFacts facts;
        facts.seccomp = qemu_has_seccomp(qemu);
        facts.cache_key = accelerator_cache_key(qemu);
        facts.decided = decide_accelerator_without_probe(request, cache_file, facts.cache_key, kvm_device_usable);
        return facts;
      },
      [this, alive = alive_, probe_spec](HostFacts facts) {
        if (!*alive) return;
        seccomp_ = facts.seccomp;
        if (facts.decided) return prepared(*facts.decided);
        probe_kvm(probe_spec, facts.cache_key);
      });
}

void VmLauncher::probe_kvm(const VmSpec& probe_spec, std::string cache_key) {
  // A probe boot like any other, on the loop: once per host, before any
  // sandbox uses KVM.
  spdlog::info("probing whether kvm boots a guest here (once per host)");
  VmSpec spec = probe_spec;
  spec.accelerator = Accelerator::kKvm;
  spec.boot_deadline = settings_.kvm_probe_deadline;
  spec.network = NetworkMode::kNone;  // the probe asks only whether the guest boots; no DHCP wait
  spec.extra_ports.clear();
  spec.on_spawned = nullptr;
  spec.seccomp_sandbox = spec.seccomp_sandbox && seccomp_;
  Vm::boot(io_, spec, [this, alive = alive_, cache_key](Expected<std::shared_ptr<Vm>, BootError> r) {
    if (!*alive) return;
    if (r) (*r)->kill();
    else spdlog::info("kvm probe failed: {}", r.error().message.substr(0, 300));
    Accelerator verdict = r ? Accelerator::kKvm : Accelerator::kTcg;
    spdlog::info("accelerator verdict: {}", to_string(verdict));
    blocking_.run([cache_file = settings_.cache_dir / "accelerator", cache_key,
                   verdict] { record_accelerator_verdict(cache_file, cache_key, verdict); },
                  [] {});
    prepared(verdict);
  });
}

void VmLauncher::prepared(Accelerator accelerator) {
  accelerator_ = accelerator;
  preparing_ = false;
  auto waiting = std::move(waiting_);
  for (auto& [spec, done] : waiting) launch(std::move(spec), std::move(done));
}

void VmLauncher::attempt(VmSpec spec, unsigned attempt_no, Vm::BootCallback done) {
  Vm::boot(io_, spec,
           [this, alive = alive_, spec, attempt_no, done = std::move(done)](Expected<std::shared_ptr<Vm>, BootError> r) mutable {
             if (!*alive) return;
             if (r || r.error().kind != BootFailure::kDeadline || attempt_no >= settings_.boot_attempts) {
               done(std::move(r));
               return;
             }
             ++boot_hangs_;
             if (spec.accelerator == Accelerator::kKvm && !settings_.accelerator.fixed) {
               spdlog::warn("KVM boot missed its deadline; using TCG from now on");
               blocking_.run([cache_file = settings_.cache_dir / "accelerator", qemu = spec.qemu_binary] {
                 record_accelerator_verdict(cache_file, accelerator_cache_key(qemu), Accelerator::kTcg);
               }, [] {});
               accelerator_ = Accelerator::kTcg;
               spec.accelerator = Accelerator::kTcg;
             } else {
               spdlog::warn("guest boot hung (attempt {} of {}), retrying", attempt_no, settings_.boot_attempts);
             }
             attempt(std::move(spec), attempt_no + 1, std::move(done));
           });
}

}  // namespace sandboxd::vm
