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

const char* to_string(Accelerator a) {
  switch (a) {
    case Accelerator::kKvm: return "kvm";
    case Accelerator::kTcg: return "tcg";
    case Accelerator::kHvf: return "hvf";
  }
  return "?";
}

std::optional<Accelerator> accelerator_from_string(std::string_view s) {
  if (s == "kvm") return Accelerator::kKvm;
  if (s == "tcg") return Accelerator::kTcg;
  if (s == "hvf") return Accelerator::kHvf;
  return std::nullopt;
}

std::optional<AcceleratorRequest> parse_accelerator_request(std::string_view s) {
  if (s == "auto") return AcceleratorRequest{};
  auto a = accelerator_from_string(s);
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
  return accelerator_from_string(verdict);
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

Accelerator choose_accelerator(const AcceleratorRequest& request, const std::filesystem::path& cache_file,
                               const std::string& cache_key, const std::function<bool()>& kvm_available,
                               const std::function<bool(Accelerator)>& probe_boot) {
  if (request.fixed) return *request.fixed;
  if (!kvm_available()) return Accelerator::kTcg;
  if (auto cached = read_cached(cache_file, cache_key)) return *cached;
  Accelerator verdict = probe_boot(Accelerator::kKvm) ? Accelerator::kKvm : Accelerator::kTcg;
  write_cached(cache_file, cache_key, verdict);
  return verdict;
}

void record_accelerator_failure(const std::filesystem::path& cache_file, const std::string& cache_key,
                                Accelerator a) {
  if (a == Accelerator::kKvm) write_cached(cache_file, cache_key, Accelerator::kTcg);
}

}  // namespace sandboxd::vm
