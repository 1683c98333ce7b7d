#include "guest/kernel_modules.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>

namespace sandboxd::guest {

namespace {
std::string normalized(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c == '-') c = '_';
  return out;
}

// Space- (or newline-) separated words.
std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    std::size_t end = text.find_first_of(" \n", i);
    if (end == std::string_view::npos) end = text.size();
    if (end > i) out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

// finit_module of `path` with its command-line parameters; a failure's line, if any.
std::optional<std::string> load_module(const std::string& path, std::string_view cmdline) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return path + ": " + std::strerror(errno);
  std::string params = module_params_from_cmdline(cmdline, module_name_of(path));
  std::optional<std::string> failure;
  if (::syscall(SYS_finit_module, fd, params.c_str(), 0) != 0 && errno != EEXIST)
    failure = path + ": " + std::strerror(errno);
  ::close(fd);
  return failure;
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
    if (auto failure = load_module(path, cmdline)) failures.push_back(*failure);
  }
  return failures;
}

std::vector<std::string> requested_modules_from_cmdline(std::string_view cmdline) {
  constexpr std::string_view kKey = "sandbox.modules=";
  std::vector<std::string> names;
  for (std::string_view token : words(cmdline)) {
    if (!token.starts_with(kKey)) continue;
    token.remove_prefix(kKey.size());
    while (!token.empty()) {
      auto comma = token.find(',');
      std::string name = normalized(token.substr(0, comma));
      token = comma == std::string_view::npos ? std::string_view{} : token.substr(comma + 1);
      if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  return names;
}

OptionalModules optional_modules_to_load(std::string_view list_text, const std::vector<std::string>& requested) {
  struct Line {
    std::string path;
    std::string name;
    std::vector<std::string> needs;
  };
  std::vector<Line> lines;
  std::size_t start = 0;
  while (start < list_text.size()) {
    std::size_t end = list_text.find('\n', start);
    if (end == std::string_view::npos) end = list_text.size();
    std::string_view line = list_text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    auto fields = words(line);
    if (fields.empty()) continue;
    Line parsed{std::string(fields[0]), module_name_of(fields[0]), {}};
    for (std::size_t i = 1; i < fields.size(); ++i) parsed.needs.push_back(normalized(fields[i]));
    lines.push_back(std::move(parsed));
  }
  auto line_of = [&](const std::string& name) {
    return std::find_if(lines.begin(), lines.end(), [&](const Line& l) { return l.name == name; });
  };

  OptionalModules out;
  std::vector<bool> wanted(lines.size(), false);
  std::vector<std::string> pending;
  for (const auto& name : requested) {
    if (line_of(normalized(name)) == lines.end()) out.unknown.push_back(name);
    else pending.push_back(normalized(name));
  }
  // What a module needs is named in its line; follow it, for a list that
  // names only direct dependencies. A need the list lacks was in the boot list.
  while (!pending.empty()) {
    auto it = line_of(pending.back());
    pending.pop_back();
    if (it == lines.end()) continue;
    auto index = static_cast<std::size_t>(it - lines.begin());
    if (wanted[index]) continue;
    wanted[index] = true;
    pending.insert(pending.end(), it->needs.begin(), it->needs.end());
  }
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (wanted[i]) out.paths.push_back(lines[i].path);
  return out;
}

std::vector<std::string> load_optional_modules(const std::string& list_file, const std::string& cmdline) {
  auto requested = requested_modules_from_cmdline(cmdline);
  if (requested.empty()) return {};
  std::ifstream in(list_file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto plan = optional_modules_to_load(text, requested);
  std::vector<std::string> failures;
  for (const auto& name : plan.unknown) failures.push_back(name + ": not among this image's optional modules");
  for (const auto& path : plan.paths)
    if (auto failure = load_module(path, cmdline)) failures.push_back(*failure);
  return failures;
}

}  // namespace sandboxd::guest
