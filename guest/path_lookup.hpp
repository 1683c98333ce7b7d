// Finding the program an exec names, the way a shell does: a name with a '/'
// is used as it is, any other is looked up in the PATH of the exec's own
// environment (not the agent's, which has none worth the name).
#pragma once

#include <string>
#include <vector>

namespace sandboxd::guest {

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The value of PATH in `env` ("NAME=value" entries), or kDefaultPath.
std::string path_of(const std::vector<std::string>& env);

struct Lookup {
  std::string path;  // empty when not found
  int error = 0;     // errno explaining why not: ENOENT, EACCES
};
Lookup find_executable(const std::string& name, const std::string& search_path);

}  // namespace sandboxd::guest
