// Mounts benchmark: a `host` mount (the guest's FUSE bridge, guest/fs_bridge.cpp,
// answered by vfs::FsServer from a vfs::HostProvider) against the same host
// directory served by QEMU's virtio-9p-device and by virtiofs (QEMU 7.2's C
// virtiofsd), and against a copy of it on the guest's own overlay. Prints
// figures, asserts nothing about them; exits non-zero only when a workload
// (or what it needs: a boot, a peer, a mount) fails.
//
// One host tree, made once per run in a temporary directory:
//   big.bin     256 MiB of pseudo-random bytes
//   files/      10,000 small files in 100 directories; files.list names them
//   repo/       a git repository of 5,000 files, committed on the host
//   proj/       a small setuptools project (setup.py and one package)
//   out/        where the write workload writes (and removes) its file
//
// Workloads, run in the guest under bash and timed there (date +%s%N, or
// python3's perf_counter), so boots and exec round trips are not in them:
//   seq write   dd if=/dev/zero bs=1M count=256 conv=fsync         MB/s
//   seq read    dd of=/dev/null bs=1M of big.bin after drop_caches   MB/s
//   stat        os.stat of the 10k files, the list read first        files/s
//   pip         pip install --no-index --no-build-isolation --no-deps of
//               proj into a venv on the guest's disk                 s
//   git status  on repo: once to warm, then timed                    s
// Each runs three times where time allows, once under TCG (git status: three
// timed runs after its warm-up always); the median is printed with n.
// MOUNT_BENCH_RUNS and MOUNT_BENCH_BIG_RUNS (the 256 MiB transfers) choose,
// MOUNT_BENCH_ONLY=ours,virtiofs,9p,ours-gk picks the VMs.
//
// The ways of serving the tree, each in its own VM of the Debian image
// "default" (1 vCPU, 1024 MiB):
//   ours        extra port "sandbox.fs", FsServer + HostProvider (default
//               options, as a sandbox's mount has them) at /mnt/bench
//   virtiofs    virtiofsd -o cache=auto, vhost-user-fs-device over a shared
//               memfd memory backend; the guest's virtiofs module. libvhost-
//               user wants modern virtio, so this VM's virtio-mmio is modern
//   overlay     in the virtiofs VM, the tree copied into /root/local. The
//               writable layer is a tmpfs: memory figures, the local bound
//   9p          -fsdev local,security_model=passthrough + virtio-9p-device,
//               mounted trans=virtio,version=9p2000.L,msize=1M, cache=none,
//               then cache=loose in the same VM
//   ours gk     ours again, on the kernel 9p had
// Debian's cloud kernel, which sandboxes boot, is built without 9p
// (CONFIG_NET_9P is not set), so 9p runs in the same image built with
// Debian's generic kernel (tests/bench/default-generic-kernel), and ours is
// measured there too: ours/9p compares the two on one kernel, ours/virtiofs
// on the cloud kernel.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "booted_vm.hpp"
#include "daemon/vfs/fs_server.hpp"
#include "daemon/vfs/host_provider.hpp"
#include "daemon/vm/qemu_command.hpp"
#include "subprocess.hpp"

using namespace sandboxd;
using namespace sandboxd::testing;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kBigBytes = 256ull << 20;
constexpr int kSmallFiles = 10'000;
constexpr int kRepoFiles = 5'000;
constexpr int kGitRuns = 3;
constexpr unsigned kMemoryMib = 1024;
constexpr const char* kGuestDir = "/mnt/bench";
constexpr const char* kGenericImage = "default-generic-kernel";
constexpr auto kWorkloadLimit = std::chrono::minutes(15);
constexpr auto kMountLimit = std::chrono::minutes(1);

std::optional<int> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  int n = std::atoi(v);
  if (n < 1 || n > 20) throw std::runtime_error(std::string(name) + " must be 1 to 20");
  return n;
}

// --- the host tree ---------------------------------------------------------

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void host_run(const std::vector<std::string>& argv) {
  auto r = run_process(argv, "", std::chrono::seconds(300));
  if (r.exit_code != 0) {
    std::string command;
    for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
    throw std::runtime_error(command + " failed: " + r.err);
  }
}

// A temporary directory holding the tree (tree/) and the peers' sockets and
// logs beside it; removed at the end.
class HostTree {
 public:
  HostTree() {
    char tmpl[] = "/var/tmp/sandboxd-mount-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    base_ = tmpl;
    start_reaper();
    tree_ = base_ / "tree";
    fs::create_directories(tree_ / "out");
    make_big_file();
    make_small_files();
    make_repo();
    make_project();
  }
  ~HostTree() {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  HostTree(const HostTree&) = delete;
  HostTree& operator=(const HostTree&) = delete;

  const fs::path& base() const { return base_; }
  const fs::path& tree() const { return tree_; }

 private:
  // A child that removes the directory once this process has gone however
  // it went (a timeout's SIGTERM included): it waits for the end of a pipe
  // only this process holds open.
  void start_reaper() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::close(p[1]);
      ::setsid();  // not in the group a timeout signals
      int null = ::open("/dev/null", O_RDWR);
      for (int fd : {0, 1, 2}) ::dup2(null, fd);  // nobody waits for its output
      char c;
      while (::read(p[0], &c, 1) != 0 && errno == EINTR) {
      }
      const char* argv[] = {"/bin/rm", "-rf", "--", base_.c_str(), nullptr};
      ::execv(argv[0], const_cast<char* const*>(argv));
      ::_exit(127);
    }
    ::close(p[0]);
    reaper_pipe_ = p[1];  // closed when the process ends
  }

  int reaper_pipe_ = -1;
  void make_big_file() {
    // xorshift64: bytes no layer can compress or find to be zero.
    std::vector<std::uint64_t> block((1u << 20) / sizeof(std::uint64_t));
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    std::ofstream out(tree_ / "big.bin", std::ios::binary);
    for (std::uint64_t done = 0; done < kBigBytes; done += 1u << 20) {
      for (auto& w : block) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w = x;
      }
      out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
    }
    if (!out) throw std::runtime_error("cannot write big.bin");
  }

  void make_small_files() {
    std::string list;
    for (int d = 0; d < 100; ++d) {
      char dir[32];
      std::snprintf(dir, sizeof dir, "files/d%02d", d);
      fs::create_directories(tree_ / dir);
      for (int f = 0; f < kSmallFiles / 100; ++f) {
        char name[48];
        std::snprintf(name, sizeof name, "%s/f%03d", dir, f);
        write_file(tree_ / name, "small file " + std::string(name) + "\n");
        list += std::string(name) + "\n";
      }
    }
    write_file(tree_ / "files.list", list);
  }

  void make_repo() {
    fs::path repo = tree_ / "repo";
    for (int d = 0; d < 50; ++d) {
      char dir[16];
      std::snprintf(dir, sizeof dir, "d%02d", d);
      fs::create_directories(repo / dir);
      for (int f = 0; f < kRepoFiles / 50; ++f) {
        char name[32];
        std::snprintf(name, sizeof name, "%s/f%03d.txt", dir, f);
        write_file(repo / name, "line one of " + std::string(name) + "\nline two\n");
      }
    }
    const std::string git = "/usr/bin/git";
    host_run({git, "-C", repo.string(), "init", "-q"});
    host_run({git, "-C", repo.string(), "add", "-A"});
    host_run({git, "-C", repo.string(), "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q",
              "-m", "5000 files"});
  }

  void make_project() {
    fs::path proj = tree_ / "proj";
    fs::create_directories(proj / "benchpkg");
    write_file(proj / "setup.py",
               "from setuptools import setup\n"
               "setup(name='benchpkg', version='1.0', packages=['benchpkg'])\n");
    write_file(proj / "benchpkg" / "__init__.py", "VALUE = 42\n");
    for (int i = 0; i < 10; ++i)
      write_file(proj / "benchpkg" / ("mod" + std::to_string(i) + ".py"),
                 "def f(x):\n    return x + " + std::to_string(i) + "\n");
  }

  fs::path base_;
  fs::path tree_;
};

// --- virtiofsd -------------------------------------------------------------

// A child process killed (SIGTERM, then SIGKILL) when this object goes, and
// by the kernel if the benchmark dies first.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const fs::path& log) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Child() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool running() const { return ::waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

std::string file_tail(const fs::path& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

// --- workloads -------------------------------------------------------------

enum Workload { kWrite, kRead, kStat, kPip, kGit, kWorkloads };
constexpr std::array<const char*, kWorkloads> kWorkloadNames = {"seq write 256 MiB", "seq read 256 MiB",
                                                                "stat 10k files", "pip install", "git status 5k"};
constexpr std::array<const char*, kWorkloads> kUnits = {"MB/s", "MB/s", "files/s", "s", "s"};
constexpr std::array<bool, kWorkloads> kHigherIsBetter = {true, true, true, false, false};

// How many times each workload runs (git status: always kGitRuns). Three
// where time allows; under TCG, where ours alone takes minutes, one, so the
// whole benchmark stays near 8 minutes. MOUNT_BENCH_RUNS and
// MOUNT_BENCH_BIG_RUNS (the two 256 MiB transfers) choose instead.
struct Runs {
  std::optional<int> normal, big;  // from the environment, or settled at the first boot
  std::string why = "chosen with MOUNT_BENCH_RUNS / MOUNT_BENCH_BIG_RUNS";

  void settle(vm::Accelerator accelerator) {
    if (normal && big) return;
    const bool tcg = accelerator == vm::Accelerator::kTcg;
    if (!normal) normal = tcg ? 1 : 3;
    if (!big) big = tcg ? 1 : 3;
    why = tcg ? "one run each under TCG, to stay near 8 minutes; MOUNT_BENCH_RUNS=3 MOUNT_BENCH_BIG_RUNS=3 for more"
              : "three runs each";
  }
  int of(Workload w) const { return w == kWrite || w == kRead ? big.value() : normal.value(); }
};

// The bash that runs workload `w` `runs` times on the tree at `dir` and
// prints "NS <nanoseconds>" per timed run.
std::string workload_script(Workload w, const std::string& dir, int runs) {
  std::string s = "set -euo pipefail\nexport PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                  "D='" + dir + "'\nRUNS=" + std::to_string(runs) + "\ncd /root\n"
                  "ns() { date +%s%N; }\n";
  const std::string big = std::to_string(kBigBytes);
  switch (w) {
    case kWrite:
      s += "mkdir -p \"$D/out\"\n"
           "for i in $(seq $RUNS); do\n"
           "  rm -f \"$D/out/w.bin\"; sync\n"
           "  t0=$(ns); r=$(dd if=/dev/zero of=\"$D/out/w.bin\" bs=1M count=256 conv=fsync 2>&1); t1=$(ns)\n"
           "  [[ $r == *'" + big + " bytes'* ]] || { echo \"dd: $r\" >&2; exit 1; }\n"
           "  test \"$(stat -c %s \"$D/out/w.bin\")\" = " + big + "\n"
           "  rm -f \"$D/out/w.bin\"\n"
           "  echo NS $((t1 - t0))\n"
           "done\n";
      break;
    case kRead:
      s += "test \"$(stat -c %s \"$D/big.bin\")\" = " + big + "\n"
           "for i in $(seq $RUNS); do\n"
           "  sync; echo 3 > /proc/sys/vm/drop_caches\n"
           "  t0=$(ns); r=$(dd if=\"$D/big.bin\" of=/dev/null bs=1M 2>&1); t1=$(ns)\n"
           "  [[ $r == *'" + big + " bytes'* ]] || { echo \"dd: $r\" >&2; exit 1; }\n"
           "  echo NS $((t1 - t0))\n"
           "done\n";
      break;
    case kStat:
      s += "python3 - \"$D\" \"$RUNS\" <<'PY'\n"
           "import os, sys, time\n"
           "d, runs = sys.argv[1], int(sys.argv[2])\n"
           "with open(os.path.join(d, 'files.list')) as f:\n"
           "    names = [os.path.join(d, line.rstrip('\\n')) for line in f]\n"
           "assert len(names) == " + std::to_string(kSmallFiles) + ", len(names)\n"
           "for _ in range(runs):\n"
           "    t = time.perf_counter()\n"
           "    for n in names:\n"
           "        os.stat(n)\n"
           "    print('NS', int((time.perf_counter() - t) * 1e9))\n"
           "PY\n";
      break;
    case kPip:
      s += "for i in $(seq $RUNS); do\n"
           "  rm -rf /root/venv \"$D/proj/build\" \"$D\"/proj/*.egg-info\n"
           "  python3 -m venv --system-site-packages --without-pip /root/venv\n"
           "  t0=$(ns)\n"
           "  /root/venv/bin/python -m pip install -q --disable-pip-version-check --root-user-action=ignore "
           "--no-cache-dir --no-index --no-build-isolation --no-deps \"$D/proj\"\n"
           "  t1=$(ns)\n"
           "  test \"$(/root/venv/bin/python -c 'import benchpkg.mod3; print(benchpkg.mod3.f(1))')\" = 4\n"
           "  echo NS $((t1 - t0))\n"
           "done\n"
           "rm -rf /root/venv \"$D/proj/build\" \"$D\"/proj/*.egg-info\n";
      break;
    case kGit:
      s += "cd \"$D/repo\"\n"
           "g() { git -c safe.directory='*' status --porcelain; }\n"
           "out=$(g); [[ -z $out ]] || { echo \"git status not clean: ${out:0:500}\" >&2; exit 1; }\n"
           "for i in $(seq " + std::to_string(kGitRuns) + "); do\n"
           "  t0=$(ns); g > /dev/null; t1=$(ns)\n"
           "  echo NS $((t1 - t0))\n"
           "done\n";
      break;
    case kWorkloads: break;
  }
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Figure {
  double value = 0;  // in kUnits
  std::size_t n = 0;
  bool present = false;
};

struct Column {
  std::string name;
  std::array<Figure, kWorkloads> figures{};
};

double value_of(Workload w, double seconds) {
  switch (w) {
    case kWrite:
    case kRead: return static_cast<double>(kBigBytes) / 1e6 / seconds;
    case kStat: return kSmallFiles / seconds;
    default: return seconds;
  }
}

// Runs the workload; throws with the guest's stderr when it fails.
Figure run_workload(BootedVm& vm, Workload w, const std::string& dir, int runs, const std::string& column) {
  std::string what = std::string(kWorkloadNames[w]) + " on " + column;
  auto r = vm.run({"bash", "-c", workload_script(w, dir, runs)}, kWorkloadLimit);
  if (!r.exit || r.exit->status != 0) {
    throw std::runtime_error(what + " failed (" + (r.exit ? "exit " + std::to_string(r.exit->status) : r.failure) +
                             "): " + r.err.substr(0, 2000));
  }
  std::vector<double> values;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("NS ", 0) != 0) continue;
    double secs = std::strtod(line.c_str() + 3, nullptr) / 1e9;
    if (secs <= 0) throw std::runtime_error(what + ": a run took no time: " + line);
    values.push_back(value_of(w, secs));
  }
  std::size_t expected = w == kGit ? kGitRuns : static_cast<std::size_t>(runs);
  if (values.size() != expected)
    throw std::runtime_error(what + ": " + std::to_string(values.size()) + " figures, not " +
                             std::to_string(expected) + ": " + r.out.substr(0, 500));
  Figure f{median(values), values.size(), true};
  std::printf("  %-18s %-16s median %10.2f %-7s of %zu:", kWorkloadNames[w], column.c_str(), f.value, kUnits[w],
              f.n);
  for (double v : values) std::printf(" %.2f", v);
  std::printf("\n");
  std::fflush(stdout);
  return f;
}

void run_all(BootedVm& vm, const std::string& dir, Column& column, const Runs& runs) {
  for (int w = 0; w < kWorkloads; ++w) {
    auto wl = static_cast<Workload>(w);
    column.figures[w] = run_workload(vm, wl, dir, runs.of(wl), column.name);
  }
}

void guest(BootedVm& vm, const std::string& script, const std::string& what,
           std::chrono::milliseconds limit = kWorkloadLimit) {
  auto r = vm.run({"bash", "-c", "set -euo pipefail\n" + script}, limit);
  if (!r.exit || r.exit->status != 0)
    throw std::runtime_error(what + " failed: " + (r.exit ? "exit " + std::to_string(r.exit->status) : r.failure) +
                             ": " + r.err.substr(0, 2000));
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// --- the ways of serving the tree ------------------------------------------

BootOptions vm_options(const std::string& image) {
  BootOptions o;
  o.image = image;
  o.memory_mib = kMemoryMib;
  o.cpus = 1;
  return o;
}

// Ours at /mnt/bench in `vm` (booted with the "sandbox.fs" port): run `body`
// while the server answers.
void with_our_mount(BootedVm& vm, const fs::path& tree, const std::function<void()>& body) {
  boost::asio::thread_pool pool(2);
  auto provider = vfs::HostProvider::open(tree, {});
  if (!provider) throw std::runtime_error("HostProvider::open: errno " + std::to_string(provider.error()));
  auto server = vfs::FsServer::start(std::move(vm.vm().extra_port(0)), pool.get_executor());
  std::optional<Expected<void, std::string>> mounted;
  server->mount({kGuestDir, std::shared_ptr<vfs::Provider>(std::move(*provider)), false},
                [&](Expected<void, std::string> r) { mounted = std::move(r); });
  if (!vm.run_until([&] { return mounted.has_value(); }, std::chrono::seconds(60)))
    throw std::runtime_error("our mount did not answer within 60 s");
  if (!*mounted) throw std::runtime_error("our mount failed: " + mounted->error());
  try {
    body();
  } catch (...) {
    server->stop();
    pool.join();
    throw;
  }
  auto stats = server->stats();
  std::printf("  (FsServer: %llu requests, %llu bad frames)\n", static_cast<unsigned long long>(stats.requests),
              static_cast<unsigned long long>(stats.bad_frames));
  server->stop();
  pool.join();
}

// Boots `options`, and settles the number of runs once the accelerator is known.
std::unique_ptr<BootedVm> boot(const BootOptions& options, const std::string& name, Runs& runs) {
  auto vm = std::make_unique<BootedVm>(options);
  runs.settle(vm->vm().spec().accelerator);
  say(name + ": booted in " + std::to_string(vm->vm().boot_time().count() / 1000) + " ms (" + options.image +
      ", " + std::string(vm::to_string(vm->vm().spec().accelerator)) + ")");
  return vm;
}

Column measure_ours(const HostTree& host, const std::string& image, const std::string& name, Runs& runs) {
  BootOptions o = vm_options(image);
  o.extra_ports = {"sandbox.fs"};
  auto t = std::chrono::steady_clock::now();
  auto vm = boot(o, name, runs);
  Column column{name, {}};
  with_our_mount(*vm, host.tree(), [&] { run_all(*vm, kGuestDir, column, runs); });
  say(name + ": done in " + std::to_string(static_cast<int>(seconds_since(t))) + " s");
  return column;
}

// The local baseline, in a VM with the tree at /mnt/bench: the tree copied
// onto the guest's own disk, untimed, and the workloads run there. big.bin
// only after the write runs: the tmpfs beneath the overlay holds at most half
// the guest's memory.
Column measure_overlay(BootedVm& vm, const Runs& runs) {
  guest(vm,
        "mkdir -p /root/local/out\n"
        "tar -C /mnt/bench --exclude=./big.bin --exclude=./out -cf - . | tar -C /root/local -xf -\n",
        "copying the tree into the overlay");
  Column c{"overlay", {}};
  for (int w = 0; w < kWorkloads; ++w) {
    auto wl = static_cast<Workload>(w);
    if (wl == kRead) guest(vm, "cp /mnt/bench/big.bin /root/local/big.bin\n", "copying big.bin into the overlay");
    c.figures[w] = run_workload(vm, wl, "/root/local", runs.of(wl), c.name);
    if (wl == kRead) guest(vm, "rm /root/local/big.bin\n", "removing big.bin from the overlay");
  }
  guest(vm, "rm -rf /root/local\n", "removing the overlay's copy");
  return c;
}

std::vector<Column> measure_9p(const HostTree& host, Runs& runs) {
  BootOptions o = vm_options(kGenericImage);
  o.extra_qemu_args = {"-fsdev",
                       "local,id=fsb,path=" + vm::qemu_option_value(host.tree().string()) +
                           ",security_model=passthrough",
                       "-device", "virtio-9p-device,fsdev=fsb,mount_tag=bench"};
  o.extra_kernel_args = "sandbox.modules=9p,9pnet_virtio";
  auto t = std::chrono::steady_clock::now();
  auto vm = boot(o, "9p", runs);
  std::vector<Column> columns;
  for (const char* cache : {"none", "loose"}) {
    guest(*vm,
          std::string("mkdir -p /mnt/bench\n"
                      "mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,cache=") +
              cache + " bench /mnt/bench\n",
          std::string("mounting 9p with cache=") + cache, kMountLimit);
    Column c{std::string("9p ") + cache, {}};
    run_all(*vm, kGuestDir, c, runs);
    columns.push_back(c);
    guest(*vm, "umount /mnt/bench\n", "unmounting 9p");
  }
  say("9p: done in " + std::to_string(static_cast<int>(seconds_since(t))) + " s");
  return columns;
}

// virtiofs, and the overlay baseline in the same VM (copied from virtiofs,
// the quickest way in).
std::vector<Column> measure_virtiofs(const HostTree& host, Runs& runs) {
  const fs::path socket = host.base() / "virtiofsd.sock";
  const fs::path log = host.base() / "virtiofsd.log";
  BootOptions o = vm_options("default");
  // virtiofsd's libvhost-user serves only modern (virtio 1.0) devices, and
  // microvm's virtio-mmio transports are legacy unless told otherwise: here
  // every one of them (console, ports, disks) is modern.
  o.extra_qemu_args = {"-object", "memory-backend-memfd,id=mem,size=" + std::to_string(kMemoryMib) + "M,share=on",
                       "-machine", "memory-backend=mem", "-global", "virtio-mmio.force-legacy=false",
                       "-chardev", "socket,id=vfs,path=" + vm::qemu_option_value(socket.string()),
                       "-device", "vhost-user-fs-device,chardev=vfs,tag=bench"};
  o.extra_kernel_args = "sandbox.modules=virtiofs";
  auto t = std::chrono::steady_clock::now();
  // virtiofsd serves one connection and exits when it closes: a boot that
  // fails (the launcher's retry included) needs a fresh one.
  for (int attempt = 1;; ++attempt) {
    fs::remove(socket);
    Child virtiofsd({"/usr/lib/qemu/virtiofsd", "--socket-path=" + socket.string(), "-o",
                     "source=" + host.tree().string(), "-o", "cache=auto"},
                    log);
    for (int i = 0; i < 500 && !fs::exists(socket) && virtiofsd.running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!fs::exists(socket)) throw std::runtime_error("virtiofsd made no socket: " + file_tail(log));
    std::unique_ptr<BootedVm> vm;
    try {
      vm = boot(o, "virtiofs", runs);
    } catch (const std::exception& e) {
      if (attempt < 2) {
        say(std::string("virtiofs: boot failed, once more: ") + e.what());
        continue;
      }
      throw std::runtime_error(std::string(e.what()) + "; virtiofsd: " + file_tail(log));
    }
    guest(*vm, "mkdir -p /mnt/bench\nmount -t virtiofs bench /mnt/bench\n", "mounting virtiofs", kMountLimit);
    Column c{"virtiofs", {}};
    run_all(*vm, kGuestDir, c, runs);
    say("virtiofs: done in " + std::to_string(static_cast<int>(seconds_since(t))) + " s");
    Column overlay = measure_overlay(*vm, runs);
    say("overlay: done in " + std::to_string(static_cast<int>(seconds_since(t))) + " s, with virtiofs");
    return {c, overlay};
  }
}

// --- the table -------------------------------------------------------------

// How much better `ours` is than `peer` (above 1: ours is better).
std::optional<double> advantage(Workload w, const Figure& ours, const Figure& peer) {
  if (!ours.present || !peer.present || ours.value <= 0 || peer.value <= 0) return std::nullopt;
  return kHigherIsBetter[w] ? ours.value / peer.value : peer.value / ours.value;
}

std::string cell(const Figure& f) {
  if (!f.present) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, f.value >= 100 ? "%.0f" : "%.2f", f.value);
  return buf;
}

std::string ratio_cell(std::optional<double> r) {
  if (!r) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", *r);
  return buf;
}

}  // namespace

int main() {
  try {
    Runs runs{env_int("MOUNT_BENCH_RUNS"), env_int("MOUNT_BENCH_BIG_RUNS")};
    // The generic-kernel image is built beside this benchmark (its meson.build).
    if (const char* extra = std::getenv("MOUNT_BENCH_IMAGES")) {
      std::string roots = extra;
      if (const char* old = std::getenv("SANDBOXD_IMAGES")) roots += std::string(":") + old;
      ::setenv("SANDBOXD_IMAGES", roots.c_str(), 1);
    }
    // MOUNT_BENCH_ONLY=ours,virtiofs,9p,ours-gk: just those VMs.
    const std::string only = std::getenv("MOUNT_BENCH_ONLY") ? std::getenv("MOUNT_BENCH_ONLY") : "";
    auto wanted = [&](const std::string& vm) {
      return only.empty() || ("," + only + ",").find("," + vm + ",") != std::string::npos;
    };

    std::cout << "sandboxd mounts benchmark\n";
    auto started = std::chrono::steady_clock::now();
    HostTree host;
    say("host tree ready in " + std::to_string(static_cast<int>(seconds_since(started))) + " s: " +
        host.tree().string());

    Column ours{"ours", {}}, ours_gk{"ours gk", {}}, ninep{"9p", {}}, ninep_loose{"9p loose", {}};
    Column virtiofs{"virtiofs", {}}, overlay{"overlay", {}};
    if (wanted("ours")) ours = measure_ours(host, "default", "ours", runs);
    if (wanted("virtiofs")) {
      auto both = measure_virtiofs(host, runs);
      virtiofs = both[0];
      overlay = both[1];
    }
    if (wanted("9p")) {
      auto both = measure_9p(host, runs);
      ninep = both[0];
      ninep_loose = both[1];
    }
    if (wanted("ours-gk")) ours_gk = measure_ours(host, kGenericImage, "ours gk", runs);

    std::printf("\nmedian of n runs in the guest: seq read/write n=%d, stat and pip n=%d (%s), git status n=%d after "
                "one warm-up\n",
                runs.big.value_or(0), runs.normal.value_or(0), runs.why.c_str(), kGitRuns);
    std::printf("1 vCPU, %u MiB each. gk: the same image with Debian's generic kernel, as 9p needs (the cloud kernel "
                "has none); the rest boot the cloud kernel\n",
                kMemoryMib);
    std::printf("9p: cache=none (and cache=loose), msize 1 MiB; virtiofs: cache=auto, its VM's virtio-mmio modern; "
                "overlay: a copy on the guest's tmpfs-backed root\n");
    // Without the ours-gk VM (tests/run.sh leaves it out to save CI time),
    // ours/9p compares across the two kernels; they differ little.
    const Column& ours_9p_peer = ours_gk.figures[0].present ? ours_gk : ours;
    std::printf("ratios: above 1 = ours better (times inverted); ours/9p compares %s with 9p%s, ours/vfs ours with "
                "virtiofs\n\n",
                ours_9p_peer.name.c_str(), &ours_9p_peer == &ours_gk ? " (one kernel)" : " (cloud kernel against generic)");
    const std::vector<const Column*> shown = {&ours, &ours_gk, &ninep, &ninep_loose, &virtiofs, &overlay};
    std::printf("%-18s %-7s", "workload", "unit");
    for (const Column* c : shown) std::printf(" %9s", c->name.c_str());
    std::printf(" %8s %10s %9s\n", "ours/9p", "/9p loose", "ours/vfs");
    bool all_at_least_9p = true;
    std::string verdicts;
    for (int w = 0; w < kWorkloads; ++w) {
      auto wl = static_cast<Workload>(w);
      std::printf("%-18s %-7s", kWorkloadNames[w], kUnits[w]);
      for (const Column* c : shown) std::printf(" %9s", cell(c->figures[w]).c_str());
      auto vs9p = advantage(wl, ours_9p_peer.figures[w], ninep.figures[w]);
      auto vs9p_loose = advantage(wl, ours_9p_peer.figures[w], ninep_loose.figures[w]);
      auto vsvfs = advantage(wl, ours.figures[w], virtiofs.figures[w]);
      std::printf(" %8s %10s %9s\n", ratio_cell(vs9p).c_str(), ratio_cell(vs9p_loose).c_str(),
                  ratio_cell(vsvfs).c_str());
      bool ok = vs9p && *vs9p >= 1.0;
      all_at_least_9p = all_at_least_9p && ok;
      verdicts += std::string(verdicts.empty() ? "" : ", ") + kWorkloadNames[w] + " " + ratio_cell(vs9p);
    }
    std::printf("\nours >= 1.0x 9p (cache=none) on each workload: %s (%s)\n", all_at_least_9p ? "yes" : "no",
                verdicts.c_str());
    std::printf("total %.0f s\n", seconds_since(started));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "benchmark failed: " << e.what() << "\n";
    return 1;
  }
}
