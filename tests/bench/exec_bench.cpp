// Exec-path benchmark: prints figures, asserts nothing.
//
//   cold boot to agent hello        p50/p95 of 5 boots
//   exec round trip of `true`       p50/p95 of 100, ours and QEMU's guest agent
//                                   (guest-exec + guest-exec-status) in the same VM
//   stdout throughput               `head -c 256M /dev/zero`, MB/s, beside the same
//                                   writer piped to cat inside the guest
//
// `exec-bench --direct-only MIB` prints just the two figures other benchmarks
// set theirs against: our exec round trip, and stdout throughput of
// `head -c MIBM /dev/zero`.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "booted_vm.hpp"

using namespace sandboxd;
using namespace sandboxd::testing;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Percentiles {
  double p50, p95;
};
Percentiles percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))]; };
  return {at(0.50), at(0.95)};
}

// A line-oriented client for qemu-ga on the host end of its port.
class QgaClient {
 public:
  explicit QgaClient(int fd) : fd_(fd) {}

  void send(const std::string& json) {
    std::string line = json + "\n";
    std::size_t off = 0;
    while (off < line.size()) {
      ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("qemu-ga port write failed");
      off += static_cast<std::size_t>(n);
    }
  }
  // Next response line, or "" after `timeout_ms`.
  std::string read_line(int timeout_ms) {
    auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      if (Clock::now() >= until) return "";
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) throw std::runtime_error("qemu-ga port closed");
        buffer_.append(buf, static_cast<std::size_t>(n));
      }
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

long json_int_after(const std::string& line, const std::string& key) {
  auto at = line.find("\"" + key + "\"");
  if (at == std::string::npos) return -1;
  at = line.find(':', at);
  return std::strtol(line.c_str() + at + 1, nullptr, 10);
}

}  // namespace

constexpr int kThroughputRuns = 3;

// Our exec round trip (ExecStart -> Exit of `true`), p50/p95 of 100 after 5
// that warm the page cache; printed, and returned for ratios.
Percentiles round_trips_of_true(BootedVm& vm) {
  for (int i = 0; i < 5; ++i) vm.run({"true"});
  std::vector<double> rts;
  for (int i = 0; i < 100; ++i) {
    auto t = Clock::now();
    auto r = vm.run({"true"});
    rts.push_back(ms_since(t));
    if (!r.exit || r.exit->status != 0) throw std::runtime_error("true failed: " + r.failure);
  }
  const Percentiles p = percentiles(rts);
  std::printf("exec round trip (sandbox-agent): p50 %.2f ms, p95 %.2f ms (n=100)\n", p.p50, p.p95);
  return p;
}

// The figures `--direct-only` prints: one VM, no peer.
int direct_only(std::uint64_t mib) {
  BootedVm vm;
  round_trips_of_true(vm);
  // Best of kThroughputRuns: under TCG a guest's first run of a command
  // pays for translating its code, and a busy host only ever slows a run.
  const std::uint64_t bytes = mib << 20;
  double best = 0;
  for (int run = 0; run < kThroughputRuns; ++run) {
    ExecOutcome r;
    auto t = Clock::now();
    vm.start(r, {"head", "-c", std::to_string(bytes), "/dev/zero"}, false);
    if (!vm.run_until([&] { return r.done(); }, std::chrono::minutes(10))) throw std::runtime_error("run timed out");
    double secs = ms_since(t) / 1000.0;
    if (!r.exit || r.exit->status != 0 || r.out_bytes != bytes)
      throw std::runtime_error("throughput run failed or lost bytes");
    best = std::max(best, static_cast<double>(bytes) / 1e6 / secs);
  }
  std::printf("stdout throughput, head -c %lluM /dev/zero: %.1f MB/s (best of %d)\n",
              static_cast<unsigned long long>(mib), best, kThroughputRuns);
  return 0;
}

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::string(argv[1]) == "--direct-only") {
      unsigned long long mib = std::strtoull(argv[2], nullptr, 10);
      if (mib == 0 || mib > 4096) throw std::runtime_error("--direct-only wants a size in MiB, 1 to 4096");
      return direct_only(mib);
    }
    if (argc != 1) throw std::runtime_error("usage: exec-bench [--direct-only MIB]");
    std::cout << "sandboxd exec benchmark\n";

    std::vector<double> boots;
    std::string accel;
    for (int i = 0; i < 5; ++i) {
      BootedVm vm;
      boots.push_back(static_cast<double>(vm.vm().boot_time().count()) / 1000.0);
      accel = vm::to_string(vm.vm().spec().accelerator);
    }
    auto boot = percentiles(boots);
    std::printf("accelerator: %s\n", accel.c_str());
    std::printf("cold boot to agent hello: p50 %.0f ms, p95 %.0f ms (n=5)\n", boot.p50, boot.p95);

    BootedVm vm({.image = "qga", .memory_mib = 256, .extra_ports = {"org.qemu.guest_agent.0"}});

    // Ours: ExecStart -> Exit of `true`, in the VM that also holds the peer.
    const Percentiles ours_p = round_trips_of_true(vm);

    // The peer: qemu-ga in the same VM, started through our agent.
    ExecOutcome qga_daemon;
    vm.start(qga_daemon,
             {"sh", "-c",
              "for p in /sys/class/virtio-ports/*; do "
              "if [ \"$(cat $p/name)\" = org.qemu.guest_agent.0 ]; then "
              "exec qemu-ga -m virtio-serial -p /dev/${p##*/} -t /tmp -f /tmp/qga.pid; fi; done; "
              "echo no qemu-ga port >&2; exit 1"});
    QgaClient qga(vm.vm().extra_port(0).native_handle());
    bool synced = false;
    for (int i = 0; i < 100 && !synced && !qga_daemon.done(); ++i) {
      qga.send("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":4242}}");
      vm.run_until([] { return false; }, std::chrono::milliseconds(100));  // let the exec start
      for (std::string line; !(line = qga.read_line(100)).empty();)
        if (line.find("4242") != std::string::npos) synced = true;
    }
    if (!synced) throw std::runtime_error("qemu-ga did not answer: " + qga_daemon.err);

    std::vector<double> peer;
    for (int i = 0; i < 105; ++i) {
      auto t = Clock::now();
      qga.send("{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/true\"}}");
      long pid = json_int_after(qga.read_line(10000), "pid");
      if (pid <= 0) throw std::runtime_error("guest-exec gave no pid");
      for (;;) {
        qga.send("{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":" + std::to_string(pid) + "}}");
        std::string line = qga.read_line(10000);
        if (line.find("\"exited\": true") != std::string::npos || line.find("\"exited\":true") != std::string::npos) break;
        if (line.empty() || line.find("error") != std::string::npos) throw std::runtime_error("guest-exec-status: " + line);
      }
      if (i >= 5) peer.push_back(ms_since(t));  // first 5 warm up
    }
    auto peer_p = percentiles(peer);
    std::printf("exec round trip (qemu-ga guest-exec + guest-exec-status): p50 %.2f ms, p95 %.2f ms (n=100)\n",
                peer_p.p50, peer_p.p95);
    std::printf("exec round trip ratio ours/qemu-ga: p50 %.2f, p95 %.2f (below 1 is faster)\n", ours_p.p50 / peer_p.p50,
                ours_p.p95 / peer_p.p95);

    // Throughput. Under TCG the guest's own CPU is the limit, so the figure
    // is put next to what the guest manages with no host in the path: the
    // same writer piped into `cat > /dev/null` inside the guest.
    const std::uint64_t bytes = 256ull << 20;
    auto timed_exec = [&](BootedVm& on, std::vector<std::string> command, std::uint64_t expect_bytes) {
      ExecOutcome r;
      auto t = Clock::now();
      on.start(r, std::move(command), false);
      if (!on.run_until([&] { return r.done(); }, std::chrono::minutes(10))) throw std::runtime_error("run timed out");
      double secs = ms_since(t) / 1000.0;
      if (!r.exit || r.exit->status != 0 || r.out_bytes != expect_bytes)
        throw std::runtime_error("throughput run failed or lost bytes");
      return secs;
    };
    std::string n = std::to_string(bytes);
    double streamed = timed_exec(vm, {"head", "-c", n, "/dev/zero"}, bytes);
    double local = timed_exec(vm, {"sh", "-c", "head -c " + n + " /dev/zero | cat > /dev/null"}, 0);
    std::printf("stdout throughput, head -c 256M /dev/zero: %.1f MB/s (%.2f s); in-guest pipe to cat: %.1f MB/s; "
                "ratio %.2f\n",
                static_cast<double>(bytes) / 1e6 / streamed, streamed, static_cast<double>(bytes) / 1e6 / local,
                local / streamed);
    double big_writes = timed_exec(vm, {"dd", "if=/dev/zero", "bs=1M", "count=256"}, bytes);
    std::printf("stdout throughput, dd bs=1M (fewer guest syscalls): %.1f MB/s\n",
                static_cast<double>(bytes) / 1e6 / big_writes);
    {
      BootedVm two({.image = "mini", .memory_mib = 256, .cpus = 2});
      double two_cpu = timed_exec(two, {"head", "-c", n, "/dev/zero"}, bytes);
      std::printf("stdout throughput, head -c 256M with 2 vCPUs: %.1f MB/s\n", static_cast<double>(bytes) / 1e6 / two_cpu);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "benchmark failed: " << e.what() << "\n";
    return 1;
  }
}
