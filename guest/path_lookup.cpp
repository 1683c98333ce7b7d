#include "guest/path_lookup.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace sandboxd::guest {

std::string path_of(const std::vector<std::string>& env) {
  for (const auto& e : env)
    if (e.rfind("PATH=", 0) == 0) return e.substr(5);
  return kDefaultPath;
}

Lookup find_executable(const std::string& name, const std::string& search_path) {
  if (name.empty()) return {"", ENOENT};
  if (name.find('/') != std::string::npos) return {name, 0};
  int error = ENOENT;
  std::size_t start = 0;
  while (start <= search_path.size()) {
    std::size_t end = search_path.find(':', start);
    if (end == std::string::npos) end = search_path.size();
    std::string dir = search_path.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return {candidate, 0};
      error = EACCES;  // remember, but a later directory may still have it
    }
    start = end + 1;
  }
  return {"", error};
}

}  // namespace sandboxd::guest
