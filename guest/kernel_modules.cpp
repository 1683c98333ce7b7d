#include "guest/kernel_modules.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace sandboxd::guest {

namespace {
std::string normalized(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c == '-') c = '_';
  return out;
}
}  // namespace

std::string module_name_of(std::string_view path) {
  auto slash = path.rfind('/');
  if (slash != std::string_view::npos) path.remove_prefix(slash + 1);
  auto dot = path.find(".ko");
  if (dot != std::string_view::npos) path = path.substr(0, dot);
  return normalized(path);
}

std::string module_params_from_cmdline(std::string_view cmdline, std::string_view module) {
  std::string wanted = normalized(module) + ".";
  std::string params;
  std::size_t i = 0;
  while (i < cmdline.size()) {
    while (i < cmdline.size() && (cmdline[i] == ' ' || cmdline[i] == '\n')) ++i;
    std::size_t end = cmdline.find_first_of(" \n", i);
    if (end == std::string_view::npos) end = cmdline.size();
    std::string_view token = cmdline.substr(i, end - i);
    i = end;
    auto dot = token.find('.');
    auto eq = token.find('=');
    if (dot == std::string_view::npos || (eq != std::string_view::npos && eq < dot)) continue;
    if (normalized(token.substr(0, dot + 1)) != wanted) continue;
    if (!params.empty()) params += ' ';
    params += token.substr(dot + 1);
  }
  return params;
}

std::vector<std::string> load_kernel_modules(const std::string& list_file, const std::string& cmdline) {
  std::vector<std::string> failures;
  std::ifstream list(list_file);
  for (std::string path; std::getline(list, path);) {
    if (path.empty() || path[0] == '#') continue;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      failures.push_back(path + ": " + std::strerror(errno));
      continue;
    }
    std::string params = module_params_from_cmdline(cmdline, module_name_of(path));
    if (::syscall(SYS_finit_module, fd, params.c_str(), 0) != 0 && errno != EEXIST)
      failures.push_back(path + ": " + std::strerror(errno));
    ::close(fd);
  }
  return failures;
}

}  // namespace sandboxd::guest
