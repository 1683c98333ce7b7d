// sandbox-agent: the guest's init and the host's hands inside the VM.
//
//   as PID 1 (in the guest):        set the system up, start the mounts bridge,
//                                   find the control port, serve
//   sandbox-agent --serve-fd N:     serve on fd N, a connected socket (host tests)
//   sandbox-agent --fs-serve-fd N:  the mounts bridge on fd N (host tests, as root)
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "guest/agent.hpp"
#include "guest/control_port.hpp"
#include "guest/fs_bridge.hpp"
#include "guest/init_system.hpp"
#include "guest/kernel_modules.hpp"
#include "guest/layered_root.hpp"
#include "guest/network_setup.hpp"

using namespace sandboxd::guest;

namespace {

void log(const std::string& line) { std::fprintf(stderr, "sandbox-agent: %s\n", line.c_str()); }

std::string read_file(const char* path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Forks the mounts bridge: the parent gets its pid (or -1). The child exits
// 0 when the host offers no "sandbox.fs" port (an older host: nothing to
// restart) and 1 when the bridge fails, for the agent to start it again.
pid_t start_fs_bridge() {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // A restart forks from inside the agent: its blocked SIGCHLD and its
  // descriptors (the control port, epoll, exec pipes) are not the bridge's.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::close_range(3, ~0u, 0);
  // Its own name in ps and for pkill: it is not the agent.
  ::prctl(PR_SET_NAME, "sandbox-fs", 0, 0, 0);
  try {
    std::string dev = find_virtio_port(kFsPortName, std::chrono::seconds(10));
    if (dev.empty()) ::_exit(0);
    int fd = open_virtio_port(dev, std::chrono::seconds(5));
    if (fd < 0) {
      log("cannot open " + dev + ": " + std::strerror(errno));
      ::_exit(1);
    }
    run_fs_bridge(fd, FsBridgeMode::kInit);
  } catch (const std::exception& e) {
    log(std::string("mounts bridge: ") + e.what());
  } catch (...) {
    log("mounts bridge: an unknown exception");
  }
  ::_exit(1);
}

// --serve-fd and --fs-serve-fd: the fd number, or -1.
int fd_argument(const char* arg) {
  char* end = nullptr;
  long fd = std::strtol(arg, &end, 10);
  if (end == arg || *end != '\0' || fd < 0 || fd > 65535) return -1;
  return static_cast<int>(fd);
}

// Whatever else the caller left open is not for the processes we start.
void close_on_exec_all_but(int keep) {
  if (keep > 3) ::close_range(3, static_cast<unsigned>(keep - 1), CLOSE_RANGE_CLOEXEC);
  ::close_range(static_cast<unsigned>(keep + 1), ~0u, CLOSE_RANGE_CLOEXEC);
}

[[noreturn]] void run_as_init() {
  attach_console();
  try {
    auto failures = init_system();
    attach_console();  // again, in case /dev/console only exists now that /dev is mounted
    for (const auto& failure : failures) log(failure);
    for (const auto& failure : load_kernel_modules("/etc/sandbox/modules", read_file("/proc/cmdline")))
      log("module " + failure);
    for (const auto& failure : load_optional_modules("/etc/sandbox/modules.optional", read_file("/proc/cmdline")))
      log("optional module " + failure);
    for (const auto& failure : set_up_network()) log("network: " + failure);
    // Last, so that the DHCP client and its hook still run from the initramfs.
    auto layers = layers_from_cmdline(read_file("/proc/cmdline"));
    if (!layers && ::access("/etc/sandbox/layers", F_OK) == 0) layers = parse_layer_list(read_file("/etc/sandbox/layers"));
    if (layers && !*layers) {
      log("layer list: " + layers->error() + "; serving from the initramfs");
    } else if (layers) {
      auto upper = upper_store_from_cmdline(read_file("/proc/cmdline"));
      if (!upper) {
        log(upper.error() + "; serving from the initramfs");
      } else if (auto entered = enter_layered_root(**layers, *upper); !entered) {
        log("cannot boot into the image's root: " + entered.error() + "; serving from the initramfs");
      }
    }
  } catch (...) {
    log("setting the system up failed; serving anyway");
  }
  // In the root the execs see, so that its mounts are where they look.
  auto fs_bridge = std::make_shared<KeptProcess>();
  fs_bridge->name = "the mounts bridge";
  fs_bridge->start = start_fs_bridge;
  fs_bridge->pid = start_fs_bridge();
  // PID 1 must never return: the kernel would panic. Whatever goes wrong is
  // logged to the console and the agent starts over.
  for (;;) {
    try {
      std::string dev = find_virtio_port(kControlPortName, std::chrono::seconds(10));
      if (dev.empty()) {
        log(std::string("no virtio port named ") + kControlPortName + " yet");
        continue;
      }
      int fd = open_virtio_port(dev, std::chrono::seconds(5));
      if (fd < 0) {
        log("cannot open " + dev + ": " + std::strerror(errno));
        ::sleep(1);
        continue;
      }
      Agent agent(fd, Agent::Mode::kInit, fs_bridge);
      agent.run();
    } catch (const std::exception& e) {
      log(std::string("restarting after: ") + e.what());
      ::sleep(1);
    } catch (...) {
      log("restarting after an unknown exception");
      ::sleep(1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (::getpid() == 1) run_as_init();
  if (argc == 3 && std::strcmp(argv[1], "--fs-serve-fd") == 0) {
    int serve_fd = fd_argument(argv[2]);
    if (serve_fd < 0) {
      std::fprintf(stderr, "sandbox-agent: --fs-serve-fd takes a file descriptor number\n");
      return 2;
    }
    close_on_exec_all_but(serve_fd);
    try {
      run_fs_bridge(serve_fd, FsBridgeMode::kServeFd);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sandbox-agent: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  if (argc == 3 && std::strcmp(argv[1], "--serve-fd") == 0) {
    int serve_fd = fd_argument(argv[2]);
    if (serve_fd < 0) {
      std::fprintf(stderr, "sandbox-agent: --serve-fd takes a file descriptor number\n");
      return 2;
    }
    close_on_exec_all_but(serve_fd);
    try {
      Agent agent(serve_fd, Agent::Mode::kServeFd);
      agent.run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sandbox-agent: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  std::fprintf(stderr,
               "usage: sandbox-agent (as PID 1) | sandbox-agent --serve-fd N | sandbox-agent --fs-serve-fd N\n");
  return 2;
}
