// The account an exec runs as, looked up in the guest's own /etc/passwd and
// /etc/group.
//
// getpwnam in a static binary goes through NSS, which glibc cannot load
// statically: it is unreliable here, so the agent reads the two files itself.
// The parsing is pure (text in, account out) so it is tested on the host.
// Lines that are not well formed (wrong field count, a uid that is not a
// number) are skipped, as are NIS "+"/"-" entries; the first line of a name
// wins, as with files NSS.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::guest {

struct UserAccount {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
  std::string shell;
  std::vector<gid_t> groups;  // supplementary, from /etc/group; the primary gid too
  bool operator==(const UserAccount&) const = default;
};

// The passwd line of `name` in passwd(5) text.
std::optional<UserAccount> find_passwd_entry(std::string_view passwd_text, std::string_view name);

// The gids of the groups in group(5) text that list `name` as a member, with
// `primary` first.
std::vector<gid_t> groups_of(std::string_view group_text, std::string_view name, gid_t primary);

// `name`'s account with its groups. Empty means root; root is uid 0, gid 0
// and /root even where passwd has no line for it (the initramfs has none).
Expected<UserAccount, std::string> resolve_account(std::string_view passwd_text, std::string_view group_text,
                                                   std::string_view name);

// The environment `env` with HOME, USER and LOGNAME from `account` added
// where it does not set them already.
std::vector<std::string> with_account_env(std::vector<std::string> env, const UserAccount& account);

}  // namespace sandboxd::guest
