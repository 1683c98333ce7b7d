#include "guest/network_setup.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

namespace sandboxd::guest {

namespace {

constexpr const char* kInterface = "eth0";
constexpr const char* kDhcpClient = "/sbin/udhcpc";  // a busybox applet link
constexpr const char* kDhcpScript = "/etc/sandbox/udhcpc.script";
constexpr const char* kDhcpLog = "/run/udhcpc.log";
// udhcpc sends up to 2 discovers 1 s apart and gives up 1 s after the last:
// about 2 s of guest time (2.5 s of wall time under TCG) with nobody answering,
// which every boot pays while no DHCP server is attached. A server normally
// answers the first discover within milliseconds; the second covers one lost
// frame. (Three attempts measured 3.1 s in the guest, 3.5 s of wall time.)
// The deadline only catches a hung client.
constexpr const char* kDiscoverAttempts = "2";
constexpr const char* kDiscoverIntervalSeconds = "1";
constexpr auto kDhcpDeadline = std::chrono::seconds(5);
// The carrier comes on a moment after the link is up; a discover sent before
// that is dropped and would cost a whole retry interval.
constexpr auto kCarrierWait = std::chrono::milliseconds(500);

std::string errno_text() { return std::strerror(errno); }

// `ip link set dev NAME up`, without a process.
bool set_link_up(const char* name, std::string& failure) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    failure = std::string("socket: ") + errno_text();
    return false;
  }
  ifreq request{};
  std::strncpy(request.ifr_name, name, IFNAMSIZ - 1);
  bool ok = ::ioctl(s, SIOCGIFFLAGS, &request) == 0;
  if (ok) {
    request.ifr_flags |= IFF_UP;
    ok = ::ioctl(s, SIOCSIFFLAGS, &request) == 0;
  }
  if (!ok) failure = std::string("bringing ") + name + " up: " + errno_text();
  ::close(s);
  return ok;
}

bool has_carrier(const char* name) {
  std::ifstream f(std::string("/sys/class/net/") + name + "/carrier");
  char c = 0;
  return f.get(c) && c == '1';
}

void wait_for_carrier(const char* name) {
  auto until = std::chrono::steady_clock::now() + kCarrierWait;
  while (!has_carrier(name) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

// Runs udhcpc until it has a lease (exit 0) or gives up; returns its exit
// status, or -1 when it could not run or had to be killed.
int run_dhcp_client(std::string& failure) {
  int log_fd = ::open(kDhcpLog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (log_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
  }
  char* argv[] = {const_cast<char*>("udhcpc"), const_cast<char*>("-i"), const_cast<char*>(kInterface),
                  const_cast<char*>("-s"), const_cast<char*>(kDhcpScript),
                  const_cast<char*>("-f"), const_cast<char*>("-q"), const_cast<char*>("-n"),
                  const_cast<char*>("-t"), const_cast<char*>(kDiscoverAttempts),
                  const_cast<char*>("-T"), const_cast<char*>(kDiscoverIntervalSeconds),
                  const_cast<char*>("-O"), const_cast<char*>("mtu"), nullptr};
  char* envp[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, kDhcpClient, &actions, nullptr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  if (log_fd >= 0) ::close(log_fd);
  if (rc != 0) {
    failure = std::string("cannot start ") + kDhcpClient + ": " + std::strerror(rc);
    return -1;
  }

  bool killed = false;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int ready;
    do {
      ready = ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kDhcpDeadline).count()));
    } while (ready < 0 && errno == EINTR);
    ::close(pidfd);
    if (ready == 0) killed = ::kill(pid, SIGKILL) == 0;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  failure = killed ? "udhcpc did not finish within " + std::to_string(kDhcpDeadline.count()) + " s and was killed"
                   : "udhcpc died of signal " + std::to_string(WTERMSIG(status));
  return -1;
}

}  // namespace

std::vector<std::string> set_up_network() {
  std::vector<std::string> failures;
  std::string failure;
  if (!set_link_up("lo", failure)) failures.push_back(failure);

  struct stat st{};
  if (::stat((std::string("/sys/class/net/") + kInterface).c_str(), &st) != 0) return failures;  // no NIC
  if (!set_link_up(kInterface, failure)) {
    failures.push_back(failure);
    return failures;
  }
  wait_for_carrier(kInterface);
  int status = run_dhcp_client(failure);
  if (status == 0) return failures;
  if (status > 0)
    failure = std::string(kInterface) + ": no DHCP lease (udhcpc exit " + std::to_string(status) + ", log " + kDhcpLog +
              "); going on without an address";
  failures.push_back(failure);
  return failures;
}

}  // namespace sandboxd::guest
