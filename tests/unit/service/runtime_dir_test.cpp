#include "daemon/service/runtime_dir.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "scratch_dir.hpp"

extern char** environ;

using namespace sandboxd::service;
using sandboxd::service::test::file_mode;
using sandboxd::service::test::fresh_dir;
using sandboxd::service::test::read_file;
using sandboxd::service::test::write_file;
namespace fs = std::filesystem;

namespace {

// A `sleep 1000` standing in for QEMU; killed and reaped at the end of the
// test whatever happened to it.
struct Sleeper {
  pid_t pid = -1;
  Sleeper() {
    char arg0[] = "sleep";
    char arg1[] = "1000";
    char* argv[] = {arg0, arg1, nullptr};
    REQUIRE(::posix_spawnp(&pid, "sleep", nullptr, nullptr, argv, environ) == 0);
  }
  ~Sleeper() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  // Still running (neither exited nor a zombie waiting for us).
  bool running() const {
    auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
  }
  // Reaps it; returns its wait status.
  int reap() {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    pid = -1;
    return status;
  }
};

std::unique_ptr<RuntimeDir> open_dir(const fs::path& root) {
  auto rd = RuntimeDir::open(root);
  if (!rd) FAIL(rd.error());
  return std::move(rd).value();
}

std::size_t entries_in(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), {}));
}

}  // namespace

TEST_CASE("runtime dir: open makes a private dir, locks it and names the daemon") {
  auto root = fresh_dir("rt") / "run" / "sandboxd";
  {
    auto rd = open_dir(root);
    CHECK(rd->root() == root);
    CHECK(file_mode(root) == 0700);
    CHECK(file_mode(root / "sandboxes") == 0700);
    CHECK(read_file(root / "daemon.pid") == std::to_string(::getpid()) + "\n");
    CHECK(fs::exists(root / "daemon.lock"));
    CHECK(rd->sandbox_dir("abc") == root / "sandboxes" / "abc");
    CHECK(rd->reconcile().summary() == "nothing was left behind by an earlier run");
  }
  CHECK_FALSE(fs::exists(root / "daemon.pid"));
  CHECK(fs::exists(root / "daemon.lock"));
}

TEST_CASE("runtime dir: a second daemon on the same dir is refused") {
  auto root = fresh_dir("rt-lock");
  auto first = open_dir(root);
  auto second = RuntimeDir::open(root);
  REQUIRE_FALSE(second);
  CHECK(second.error().find("another sandboxd-host is running (pid " + std::to_string(::getpid()) + ")") !=
        std::string::npos);
  // The refused one must not have disturbed the holder's pid file.
  CHECK(read_file(root / "daemon.pid") == std::to_string(::getpid()) + "\n");
  first.reset();
  CHECK(RuntimeDir::open(root));
}

TEST_CASE("runtime dir: a dir others may write or another user owns is refused") {
  auto root = fresh_dir("rt-perm") / "shared";
  fs::create_directories(root);
  ::chmod(root.c_str(), 0777);
  auto opened = RuntimeDir::open(root);
  REQUIRE_FALSE(opened);
  CHECK(opened.error().find("chmod 700") != std::string::npos);
  ::chmod(root.c_str(), 0755);
  CHECK(RuntimeDir::open(root));
  if (::geteuid() == 0) {
    REQUIRE(::chown(root.c_str(), 65534, 65534) == 0);
    auto foreign = RuntimeDir::open(root);
    REQUIRE_FALSE(foreign);
    CHECK(foreign.error().find("belongs to uid 65534") != std::string::npos);
  }
}

TEST_CASE("runtime dir: reconcile kills a recorded QEMU left by a dead daemon and removes its files") {
  auto base = fresh_dir("rt-kill");
  auto root = base / "run";
  auto outside = base / "qemu-serial.sock";
  write_file(outside, "x");
  Sleeper qemu;
  auto ticks = process_start_ticks(qemu.pid);
  REQUIRE(ticks != 0);
  {
    auto rd = open_dir(root);
    REQUIRE(rd->record({"sb-1", qemu.pid, ticks, "owner-label", {outside}}));
    write_file(rd->sandbox_dir("sb-1") / "console.log", "boot");
    CHECK(fs::exists(root / "sandboxes" / "sb-1" / "record.json"));
    // The daemon dies without forgetting the sandbox.
  }
  REQUIRE(qemu.running());

  auto rd = open_dir(root);
  auto report = rd->reconcile();
  CHECK(report.sandboxes == std::vector<std::string>{"sb-1"});
  CHECK(report.processes_killed == 1);
  CHECK(report.files_removed == 2);
  CHECK(report.problems.empty());
  CHECK(report.summary() == "cleaned up after an earlier run: 1 sandbox, 1 process killed, 2 files removed");
  int status = qemu.reap();
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK_FALSE(fs::exists(outside));
  CHECK_FALSE(fs::exists(root / "sandboxes" / "sb-1"));
  CHECK(entries_in(root / "sandboxes") == 0);
  CHECK(rd->reconcile().summary() == "nothing was left behind by an earlier run");
}

TEST_CASE("runtime dir: a recycled pid is never killed") {
  auto root = fresh_dir("rt-recycled");
  Sleeper other;
  auto ticks = process_start_ticks(other.pid);
  REQUIRE(ticks != 0);
  {
    auto rd = open_dir(root);
    // The recorded QEMU started at another time: the pid now belongs to
    // some other process.
    REQUIRE(rd->record({"sb-old", other.pid, ticks + 1, "owner", {}}));
  }
  auto rd = open_dir(root);
  auto report = rd->reconcile();
  CHECK(report.sandboxes == std::vector<std::string>{"sb-old"});
  CHECK(report.processes_killed == 0);
  CHECK(report.problems.empty());
  CHECK_FALSE(fs::exists(root / "sandboxes" / "sb-old"));
  CHECK(other.running());
}

TEST_CASE("runtime dir: a record from another boot is never acted on by pid") {
  auto root = fresh_dir("rt-boot");
  Sleeper other;
  auto ticks = process_start_ticks(other.pid);
  open_dir(root).reset();
  fs::create_directory(root / "sandboxes" / "sb-boot");
  write_file(root / "sandboxes" / "sb-boot" / "record.json",
             R"({"version":1,"sandbox_id":"sb-boot","boot_id":"00000000-0000-0000-0000-000000000000","qemu_pid":)" +
                 std::to_string(other.pid) + R"(,"qemu_start_ticks":)" + std::to_string(ticks) +
                 R"(,"owner":"o","files":[]})");
  auto rd = open_dir(root);
  auto report = rd->reconcile();
  CHECK(report.sandboxes == std::vector<std::string>{"sb-boot"});
  CHECK(report.processes_killed == 0);
  CHECK(other.running());
  CHECK_FALSE(fs::exists(root / "sandboxes" / "sb-boot"));
}

TEST_CASE("runtime dir: unreadable records are problems, never crashes") {
  auto root = fresh_dir("rt-corrupt");
  std::string good;
  {
    auto rd = open_dir(root);
    REQUIRE(rd->record({"sb-good", 0, 0, "owner", {"/nonexistent/sandboxd-test-file"}}));
    good = read_file(root / "sandboxes" / "sb-good" / "record.json");
  }
  auto sandboxes = root / "sandboxes";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"sb-garbage", "\x01\x02garbage"},
      {"sb-truncated", good.substr(0, good.size() / 2)},
      {"sb-empty", ""},
      {"sb-array", "[1,2,3]"},
      {"sb-types",
       R"({"version":1,"sandbox_id":"sb-types","boot_id":"","qemu_pid":"12","qemu_start_ticks":1,"owner":"","files":[]})"},
      {"sb-negative",
       R"({"version":1,"sandbox_id":"sb-negative","boot_id":"","qemu_pid":-5,"qemu_start_ticks":1,"owner":"","files":[]})"},
      {"sb-relative",
       R"({"version":1,"sandbox_id":"sb-relative","boot_id":"","qemu_pid":0,"qemu_start_ticks":0,"owner":"","files":["etc/passwd"]})"},
      {"sb-version", R"({"version":2,"sandbox_id":"sb-version"})"},
      {"sb-deep", std::string(100000, '[')},
  };
  for (const auto& [id, content] : bad) {
    fs::create_directory(sandboxes / id);
    write_file(sandboxes / id / "record.json", content);
  }
  fs::create_directories(sandboxes / "sb-dir-record" / "record.json");
  auto rd = open_dir(root);
  auto report = rd->reconcile();
  CHECK(report.sandboxes == std::vector<std::string>{"sb-good"});
  CHECK(report.problems.size() == bad.size() + 1);
  for (const auto& p : report.problems) CHECK(p.find("record unreadable") != std::string::npos);
  CHECK(report.processes_killed == 0);
  CHECK(entries_in(sandboxes) == 0);
  CHECK(report.summary().find(std::to_string(bad.size() + 1) + " problems: sandbox ") != std::string::npos);
}

TEST_CASE("runtime dir: leftovers in sandboxes/ are removed") {
  auto root = fresh_dir("rt-leftovers");
  open_dir(root).reset();
  auto sandboxes = root / "sandboxes";
  write_file(sandboxes / "sb-x.tmp-123-0", "half a record");  // not a sandbox dir
  fs::create_directories(sandboxes / "Not_An_Id");            // a dir no sandbox could have
  write_file(sandboxes / "Not_An_Id" / "f", "x");
  fs::create_directories(sandboxes / "sb-unrecorded");  // a sandbox that never got its record
  write_file(sandboxes / "sb-unrecorded" / "f", "x");
  fs::create_directories(sandboxes / "sb-interrupted");  // a record write cut short
  write_file(sandboxes / "sb-interrupted" / "record.json.tmp-99-3", "{\"vers");
  fs::create_symlink("/etc", sandboxes / "sb-link");  // never followed
  auto rd = open_dir(root);
  auto report = rd->reconcile();
  CHECK(report.sandboxes.empty());
  CHECK(report.problems.empty());
  // sb-x.tmp-123-0, Not_An_Id and its file, the two files in the record-less
  // dirs, and the link.
  CHECK(report.files_removed == 6);
  CHECK(entries_in(sandboxes) == 0);
  CHECK(fs::exists("/etc/passwd"));
}

TEST_CASE("runtime dir: record replaces the earlier record, forget removes everything") {
  auto base = fresh_dir("rt-forget");
  auto rd = open_dir(base / "run");
  auto a = base / "a.sock";
  auto b = base / "b.tmp";
  write_file(a, "a");
  write_file(b, "b");
  REQUIRE(rd->record({"sb-2", 0, 0, "owner", {a}}));
  REQUIRE(rd->record({"sb-2", 0, 0, "owner", {a, b}}));
  auto dir = rd->sandbox_dir("sb-2");
  CHECK(entries_in(dir) == 1);  // no temporary file is left
  CHECK(file_mode(dir) == 0700);
  CHECK(file_mode(dir / "record.json") == 0600);
  auto json = read_file(dir / "record.json");
  CHECK(json.find(b.string()) != std::string::npos);
  CHECK(json.find("\"owner\":\"owner\"") != std::string::npos);
  write_file(dir / "own-file", "x");

  rd->forget("sb-2");
  CHECK_FALSE(fs::exists(a));
  CHECK_FALSE(fs::exists(b));
  CHECK_FALSE(fs::exists(dir));
  rd->forget("sb-2");  // twice is harmless
  CHECK(rd->reconcile().summary() == "nothing was left behind by an earlier run");
}

TEST_CASE("runtime dir: sandbox ids that could escape or hide are refused") {
  auto root = fresh_dir("rt-ids");
  auto rd = open_dir(root);
  const std::vector<std::string> bad_ids = {"",
                                            "..",
                                            ".",
                                            "../x",
                                            "a/b",
                                            "UPPER",
                                            "a.b",
                                            "a b",
                                            "a_b",
                                            ".hidden",
                                            std::string(65, 'a'),
                                            std::string("a\0b", 3),
                                            "caf\xc3\xa9"};
  for (const auto& bad : bad_ids) {
    CHECK_FALSE(is_valid_sandbox_id(bad));
    auto r = rd->record({bad, 0, 0, "o", {}});
    REQUIRE_FALSE(r);
    CHECK(r.error().find("invalid sandbox id") != std::string::npos);
    CHECK(rd->sandbox_dir(bad).empty());
    rd->forget(bad);
  }
  CHECK(fs::exists(root / "sandboxes"));
  CHECK(fs::exists(root / "daemon.lock"));
  CHECK(is_valid_sandbox_id(std::string(64, 'a')));
  CHECK(is_valid_sandbox_id("0-a-9"));

  auto relative = rd->record({"sb-rel", 0, 0, "o", {"relative/file"}});
  REQUIRE_FALSE(relative);
  CHECK(relative.error().find("is not an absolute path") != std::string::npos);
  CHECK_FALSE(rd->record({"sb-neg", -1, 0, "o", {}}));
}

TEST_CASE("runtime dir: process start ticks") {
  CHECK(process_start_ticks(::getpid()) != 0);
  CHECK(process_start_ticks(::getpid()) == process_start_ticks(::getpid()));
  CHECK(process_start_ticks(0) == 0);
  CHECK(process_start_ticks(-1) == 0);
  pid_t gone;
  {
    Sleeper s;
    gone = s.pid;
    CHECK(process_start_ticks(gone) >= process_start_ticks(::getpid()));
  }
  CHECK(process_start_ticks(gone) == 0);
}

TEST_CASE("runtime dir: default location") {
  auto dir = default_runtime_dir();
  if (::geteuid() == 0)
    CHECK(dir == "/run/sandboxd");
  else
    CHECK(dir.filename().string().rfind("sandboxd", 0) == 0);
}

TEST_CASE("runtime dir: report summary") {
  ReconcileReport r;
  CHECK(r.summary() == "nothing was left behind by an earlier run");
  r.sandboxes = {"a", "b"};
  r.processes_killed = 2;
  r.files_removed = 1;
  CHECK(r.summary() == "cleaned up after an earlier run: 2 sandboxes, 2 processes killed, 1 file removed");
  r.problems = {"one", "two"};
  CHECK(r.summary() ==
        "cleaned up after an earlier run: 2 sandboxes, 2 processes killed, 1 file removed; 2 problems: one; two");
}
