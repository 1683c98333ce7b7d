#include "guest/control_port.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

namespace sandboxd::guest {

std::string find_virtio_port(const std::string& name, std::chrono::milliseconds wait) {
  auto until = std::chrono::steady_clock::now() + wait;
  do {
    if (DIR* d = ::opendir("/sys/class/virtio-ports")) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream f(std::string("/sys/class/virtio-ports/") + e->d_name + "/name");
        std::string port_name;
        if (std::getline(f, port_name) && port_name == name) {
          std::string dev = std::string("/dev/") + e->d_name;
          ::closedir(d);
          return dev;
        }
      }
      ::closedir(d);
    }
    ::usleep(2000);
  } while (std::chrono::steady_clock::now() < until);
  return "";
}

int open_virtio_port(const std::string& dev_path, std::chrono::milliseconds wait) {
  auto until = std::chrono::steady_clock::now() + wait;
  do {
    int fd = ::open(dev_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) return fd;
    ::usleep(2000);
  } while (std::chrono::steady_clock::now() < until);
  return -1;
}

}  // namespace sandboxd::guest
