#include "daemon/vm/accelerator.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace sandboxd::vm {

std::optional<AcceleratorRequest> parse_accelerator_request(std::string_view s) {
  if (s == "auto") return AcceleratorRequest{};
  auto a = kAcceleratorNames.parse(s);
  if (!a) return std::nullopt;
  return AcceleratorRequest{a};
}

bool kvm_device_usable() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  ::close(fd);
  return version == KVM_API_VERSION;
}

std::string accelerator_cache_key(const std::filesystem::path& qemu_binary) {
  std::ostringstream key;
  struct utsname u {};
  if (::uname(&u) == 0) key << u.release << ' ' << u.version << ';';
  struct stat st {};
  if (::stat(qemu_binary.c_str(), &st) == 0) key << qemu_binary.string() << ' ' << st.st_size << ' ' << st.st_mtime << ';';
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      key << line;
      break;
    }
  }
  return key.str();
}

namespace {

// Cache file: two lines, the key and the verdict ("kvm" or "tcg").
std::optional<Accelerator> read_cached(const std::filesystem::path& file, const std::string& key) {
  std::ifstream in(file);
  std::string cached_key, verdict;
  if (!std::getline(in, cached_key) || !std::getline(in, verdict)) return std::nullopt;
  if (cached_key != key) return std::nullopt;
  return kAcceleratorNames.parse(verdict);
}

void write_cached(const std::filesystem::path& file, const std::string& key, Accelerator a) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  auto tmp = file;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << key << '\n' << to_string(a) << '\n';
    if (!out) return;  // an unwritable cache only costs a probe next time
  }
  std::filesystem::rename(tmp, file, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

}  // namespace

std::optional<Accelerator> decide_accelerator_without_probe(const AcceleratorRequest& request,
                                                            const std::filesystem::path& cache_file,
                                                            const std::string& cache_key,
                                                            const std::function<bool()>& kvm_available) {
  if (request.fixed) return *request.fixed;
  if (!kvm_available()) return Accelerator::kTcg;
  return read_cached(cache_file, cache_key);
}

void record_accelerator_verdict(const std::filesystem::path& cache_file, const std::string& cache_key,
                                Accelerator verdict) {
  write_cached(cache_file, cache_key, verdict);
}

}  // namespace sandboxd::vm
