// sandbox-agent: the guest's init and the host's hands inside the VM.
//
//   as PID 1 (in the guest):     set the system up, find the control port, serve
//   sandbox-agent --serve-fd N:  serve on fd N, a connected socket (host tests)
#include <linux/close_range.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>

#include "guest/agent.hpp"
#include "guest/control_port.hpp"
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

[[noreturn]] void run_as_init() {
  attach_console();
  try {
    auto failures = init_system();
    attach_console();  // again, in case /dev/console only exists now that /dev is mounted
    for (const auto& failure : failures) log(failure);
    for (const auto& failure : load_kernel_modules("/etc/sandbox/modules", read_file("/proc/cmdline")))
      log("module " + failure);
    for (const auto& failure : set_up_network()) log("network: " + failure);
    // Last, so that the DHCP client and its hook still run from the initramfs.
    auto layers = layers_from_cmdline(read_file("/proc/cmdline"));
    if (!layers && ::access("/etc/sandbox/layers", F_OK) == 0) layers = parse_layer_list(read_file("/etc/sandbox/layers"));
    if (layers && !*layers) {
      log("layer list: " + layers->error() + "; serving from the initramfs");
    } else if (layers) {
      if (auto entered = enter_layered_root(**layers); !entered)
        log("cannot boot into the image's root: " + entered.error() + "; serving from the initramfs");
    }
  } catch (...) {
    log("setting the system up failed; serving anyway");
  }
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
      Agent agent(fd, Agent::Mode::kInit);
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
  if (argc == 3 && std::strcmp(argv[1], "--serve-fd") == 0) {
    char* end = nullptr;
    long fd = std::strtol(argv[2], &end, 10);
    if (*end != '\0' || fd < 0 || fd > 65535) {
      std::fprintf(stderr, "sandbox-agent: --serve-fd takes a file descriptor number\n");
      return 2;
    }
    // Whatever else the caller left open is not for the processes we start.
    int serve_fd = static_cast<int>(fd);
    if (serve_fd > 3) ::close_range(3, static_cast<unsigned>(serve_fd - 1), CLOSE_RANGE_CLOEXEC);
    ::close_range(static_cast<unsigned>(serve_fd + 1), ~0u, CLOSE_RANGE_CLOEXEC);
    try {
      Agent agent(serve_fd, Agent::Mode::kServeFd);
      agent.run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sandbox-agent: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  std::fprintf(stderr, "usage: sandbox-agent (as PID 1) | sandbox-agent --serve-fd N\n");
  return 2;
}
