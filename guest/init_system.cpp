#include "guest/init_system.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace sandboxd::guest {

namespace {
struct Mount {
  const char* source;
  const char* target;
  const char* type;
  unsigned long flags;
  const char* options;
};
}  // namespace

std::vector<std::string> init_system() {
  std::vector<std::string> failures;
  const Mount mounts[] = {
      {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr},
      {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr},
      {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"},
      {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666"},
      {"tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
      {"tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
      {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"},
  };
  for (const Mount& m : mounts) {
    ::mkdir(m.target, 0755);
    if (::mount(m.source, m.target, m.type, m.flags, m.options) != 0 && errno != EBUSY)
      failures.push_back(std::string("mount ") + m.target + ": " + std::strerror(errno));
  }
  // What shells and programs expect in /dev beyond the device nodes.
  (void)::symlink("/proc/self/fd", "/dev/fd");
  (void)::symlink("/proc/self/fd/0", "/dev/stdin");
  (void)::symlink("/proc/self/fd/1", "/dev/stdout");
  (void)::symlink("/proc/self/fd/2", "/dev/stderr");
  (void)::symlink("pts/ptmx", "/dev/ptmx");
  if (::sethostname("sandbox", 7) != 0) failures.push_back(std::string("sethostname: ") + std::strerror(errno));
  return failures;
}

void attach_console() {
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) continue;
    int c = ::open("/dev/console", O_RDWR | O_NOCTTY);
    if (c < 0) c = ::open("/dev/null", O_RDWR);
    if (c >= 0 && c != fd) {
      ::dup2(c, fd);
      ::close(c);
    }
  }
}

void power_off() {
  ::kill(-1, SIGTERM);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (std::chrono::steady_clock::now() < until) {
    pid_t r = ::waitpid(-1, nullptr, WNOHANG);
    if (r < 0 && errno == ECHILD) break;  // nothing left
    if (r <= 0) ::usleep(5000);
  }
  ::kill(-1, SIGKILL);
  ::sync();
  ::reboot(RB_POWER_OFF);
  ::reboot(RB_AUTOBOOT);  // no ACPI power-off: -no-reboot makes QEMU exit on reset
  for (;;) ::pause();
}

}  // namespace sandboxd::guest
