#include <catch2/catch.hpp>

#include "guest/user_account.hpp"

using namespace sandboxd::guest;

namespace {
constexpr std::string_view kPasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "# a comment\n"
    "+nis\n"
    "broken:x:1001\n"
    "baduid:x:12a:5::/home/baduid:/bin/sh\n"
    "nouid:x:4294967295:5::/:/bin/sh\n"
    "sandbox:x:1000:1000:Sandbox User,,,:/home/sandbox:/bin/sh\r\n"
    "sandbox:x:2000:2000::/elsewhere:/bin/sh\n"
    "nohome:x:1002:1002:::/bin/sh";
constexpr std::string_view kGroup =
    "root:x:0:\n"
    "sandbox:x:1000:\n"
    "users:x:100:other,sandbox\n"
    "audio:x:29:sandboxer\n"
    "video:x:44:sandbox\n"
    "weird:x:zz:sandbox\n"
    "short:x:7\n";
}  // namespace

TEST_CASE("user account: a passwd line gives uid, gid, home and shell; the first line of a name wins") {
  auto a = find_passwd_entry(kPasswd, "sandbox");
  REQUIRE(a.has_value());
  CHECK(a->uid == 1000);
  CHECK(a->gid == 1000);
  CHECK(a->home == "/home/sandbox");
  CHECK(a->shell == "/bin/sh");
  CHECK(find_passwd_entry(kPasswd, "root")->home == "/root");
}

TEST_CASE("user account: malformed lines, NIS entries and partial names are not accounts") {
  for (std::string_view name : {"broken", "baduid", "nouid", "+nis", "nis", "sand", "", "x"}) {
    INFO(name);
    CHECK_FALSE(find_passwd_entry(kPasswd, name).has_value());
  }
  CHECK_FALSE(find_passwd_entry("", "root").has_value());
  CHECK_FALSE(find_passwd_entry("::::::\n:::", "").has_value());
}

TEST_CASE("user account: supplementary groups are those listing the name, primary first") {
  CHECK(groups_of(kGroup, "sandbox", 1000) == std::vector<gid_t>{1000, 100, 44});
  CHECK(groups_of(kGroup, "nobody", 65534) == std::vector<gid_t>{65534});
  CHECK(groups_of("users:x:100:sandbox\n", "sandbox", 100) == std::vector<gid_t>{100});
}

TEST_CASE("user account: root needs no passwd line; an unknown name is an error naming it") {
  auto root = resolve_account("", "", "");
  REQUIRE(root.has_value());
  CHECK(root->uid == 0);
  CHECK(root->gid == 0);
  CHECK(root->home == "/root");
  CHECK(resolve_account(kPasswd, kGroup, "root")->shell == "/bin/bash");
  auto sandbox = resolve_account(kPasswd, kGroup, "sandbox");
  REQUIRE(sandbox.has_value());
  CHECK(sandbox->groups == std::vector<gid_t>{1000, 100, 44});
  CHECK(resolve_account(kPasswd, kGroup, "nohome")->home == "/");
  auto unknown = resolve_account(kPasswd, kGroup, "mallory");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().find("'mallory'") != std::string::npos);
}

TEST_CASE("user account: HOME, USER and LOGNAME are defaults, not overrides") {
  UserAccount a{"sandbox", 1000, 1000, "/home/sandbox", "/bin/sh", {}};
  auto env = with_account_env({"PATH=/bin", "HOME=/work", "USERX=1"}, a);
  CHECK(env == std::vector<std::string>{"PATH=/bin", "HOME=/work", "USERX=1", "USER=sandbox", "LOGNAME=sandbox"});
}
