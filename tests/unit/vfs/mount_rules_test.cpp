// The mount rules: which guest paths can be mount points, which overlap,
// and which host directories a host mount may serve.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "daemon/vfs/mount_rules.hpp"

using namespace sandboxd::vfs;
namespace fsys = std::filesystem;

TEST_CASE("mount rules: guest mount paths") {
  for (const char* good : {"/workspace", "/srv/data", "/a/b/c", "/tmp/x", "/home/sandbox/.cache", "/runner", "/devices"}) {
    INFO(good);
    CHECK_FALSE(mount_path_problem(good));
  }
  for (const char* bad : {"", "workspace", "/", "/a/", "//a", "/a//b", "/a/./b", "/a/..", "/../etc", "/proc", "/proc/x",
                          "/sys/fs", "/dev", "/dev/shm", "/run", "/run/sandbox/upper"}) {
    INFO(bad);
    CHECK(mount_path_problem(bad));
  }
  CHECK(mount_path_problem(std::string("/a\0b", 4)));
  CHECK(mount_path_problem("/" + std::string(256, 'x')));
  CHECK(mount_path_problem(std::string(4096, '/')));
  CHECK(mount_paths_overlap("/a", "/a"));
  CHECK(mount_paths_overlap("/a", "/a/b"));
  CHECK(mount_paths_overlap("/a/b/c", "/a"));
  CHECK_FALSE(mount_paths_overlap("/a", "/ab"));
  CHECK_FALSE(mount_paths_overlap("/a/b", "/a/c"));
}

TEST_CASE("mount rules: a host directory must be beneath an allowed root once resolved") {
  std::string pattern = (fsys::temp_directory_path() / "mount-rules-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  fsys::path base = fsys::canonical(pattern);
  fsys::create_directories(base / "allowed" / "agent" / "deep");
  fsys::create_directories(base / "allowedness");
  fsys::create_directories(base / "outside");
  fsys::create_symlink(base / "outside", base / "allowed" / "escape");
  fsys::create_symlink(base / "allowed" / "agent", base / "outside" / "inward");
  {
    std::FILE* f = std::fopen((base / "allowed" / "file").c_str(), "w");
    std::fclose(f);
  }
  std::vector<fsys::path> allowed{base / "allowed"};

  CHECK(*resolve_host_root((base / "allowed").string(), allowed) == base / "allowed");
  CHECK(*resolve_host_root((base / "allowed" / "agent" / "deep").string(), allowed) == base / "allowed/agent/deep");
  CHECK(*resolve_host_root((base / "allowed" / "agent" / ".." / "agent").string(), allowed) == base / "allowed/agent");
  // A link from outside into an allowed directory is resolved to where it points.
  CHECK(*resolve_host_root((base / "outside" / "inward").string(), allowed) == base / "allowed/agent");

  CHECK_FALSE(resolve_host_root((base / "outside").string(), allowed));
  CHECK_FALSE(resolve_host_root((base / "allowedness").string(), allowed));  // a prefix is not a parent
  CHECK_FALSE(resolve_host_root((base / "allowed" / "..").string(), allowed));
  CHECK_FALSE(resolve_host_root((base / "allowed" / "escape").string(), allowed));
  CHECK_FALSE(resolve_host_root((base / "allowed" / "missing").string(), allowed));
  CHECK_FALSE(resolve_host_root((base / "allowed" / "file").string(), allowed));
  CHECK_FALSE(resolve_host_root("relative/path", allowed));
  CHECK_FALSE(resolve_host_root((base / "allowed").string(), {}));
  CHECK_FALSE(resolve_host_root((base / "allowed").string(), {base / "no-such-root"}));
  // The root "/" allows everything that exists.
  CHECK(resolve_host_root((base / "outside").string(), {"/"}));
  fsys::remove_all(base);
}
