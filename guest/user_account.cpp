#include "guest/user_account.hpp"

#include <charconv>
#include <limits>

namespace sandboxd::guest {

namespace {

std::vector<std::string_view> split(std::string_view line, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    std::size_t at = line.find(separator, start);
    if (at == std::string_view::npos) {
      parts.push_back(line.substr(start));
      return parts;
    }
    parts.push_back(line.substr(start, at - start));
    start = at + 1;
  }
}

// A decimal id below (uid_t)-1, which means "no id" to set*id.
std::optional<std::uint32_t> parse_id(std::string_view s) {
  std::uint32_t v = 0;
  if (s.empty() || s.size() > 10) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v == std::numeric_limits<std::uint32_t>::max())
    return std::nullopt;
  return v;
}

template <class F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = end + 1;
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
    if (!f(line)) return;
  }
}

bool has_name(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& e : env)
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=') return true;
  return false;
}

}  // namespace

std::optional<UserAccount> find_passwd_entry(std::string_view passwd_text, std::string_view name) {
  std::optional<UserAccount> found;
  if (name.empty()) return found;
  for_each_line(passwd_text, [&](std::string_view line) {
    auto f = split(line, ':');
    if (f.size() != 7 || f[0] != name) return true;
    auto uid = parse_id(f[2]);
    auto gid = parse_id(f[3]);
    if (!uid || !gid) return true;
    found = UserAccount{std::string(f[0]), *uid, *gid, std::string(f[5]), std::string(f[6]), {}};
    return false;
  });
  return found;
}

std::vector<gid_t> groups_of(std::string_view group_text, std::string_view name, gid_t primary) {
  std::vector<gid_t> groups{primary};
  for_each_line(group_text, [&](std::string_view line) {
    auto f = split(line, ':');
    if (f.size() != 4) return true;
    auto gid = parse_id(f[2]);
    if (!gid) return true;
    for (std::string_view member : split(f[3], ',')) {
      if (member == name) {
        bool known = false;
        for (gid_t g : groups) known = known || g == *gid;
        if (!known && groups.size() < 256) groups.push_back(*gid);
        break;
      }
    }
    return true;
  });
  return groups;
}

Expected<UserAccount, std::string> resolve_account(std::string_view passwd_text, std::string_view group_text,
                                                   std::string_view name) {
  if (name.empty()) name = "root";
  auto account = find_passwd_entry(passwd_text, name);
  if (!account) {
    if (name != "root") return Unexpected{"no user '" + std::string(name) + "' in the guest's /etc/passwd"};
    account = UserAccount{"root", 0, 0, "/root", "/bin/sh", {}};
  }
  if (account->home.empty()) account->home = "/";
  account->groups = groups_of(group_text, account->name, account->gid);
  return *account;
}

std::vector<std::string> with_account_env(std::vector<std::string> env, const UserAccount& account) {
  if (!has_name(env, "HOME")) env.push_back("HOME=" + account.home);
  if (!has_name(env, "USER")) env.push_back("USER=" + account.name);
  if (!has_name(env, "LOGNAME")) env.push_back("LOGNAME=" + account.name);
  return env;
}

}  // namespace sandboxd::guest
