#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "guest/exec_session.hpp"
#include "guest/file_tool.hpp"
#include "protocol/bytes.hpp"

using namespace sandboxd;
using namespace sandboxd::guest;

namespace {

struct Run {
  int status = -1;  // the exit status; -1 when killed by a signal
  std::string out;
  std::string err;
};

// Reads what is left on `fd` into `into`; false once it reached EOF.
bool drain(int fd, std::string& into) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) into.append(buf, static_cast<std::size_t>(n));
    else if (n < 0 && errno == EINTR) continue;
    else return n < 0 && errno == EAGAIN;
  }
}

// Pumps `input` into `in` (closed when all is written or the reader left)
// while collecting `out` and `err` until both end.
void pump(int in, const std::string& input, int out, int err, Run& r) {
  std::size_t written = 0;
  for (int fd : {in, out, err})
    if (fd >= 0) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  if (in >= 0 && input.empty()) in = (::close(in), -1);
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    pollfd p[3] = {{out_open ? out : -1, POLLIN, 0}, {err_open ? err : -1, POLLIN, 0}, {in, POLLOUT, 0}};
    REQUIRE(::poll(p, 3, 10000) > 0);
    if (p[0].revents) out_open = drain(out, r.out);
    if (p[1].revents) err_open = drain(err, r.err);
    if (in >= 0 && p[2].revents) {
      ssize_t n = ::write(in, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      // EPIPE: the tool read what it wanted and exited.
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in = (::close(in), -1);
    }
  }
  if (in >= 0) ::close(in);
}

// Runs one operation in a forked child, as the agent does, with pipes for
// stdin (fed `input`, then closed), stdout and stderr.
Run run(const std::vector<std::string>& argv, const std::string& input = {}) {
  ::signal(SIGPIPE, SIG_IGN);  // for the pump: a tool that stops reading early is no test failure
  int in[2], out[2], err[2];
  REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    ::_exit(run_file_tool(argv));
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  Run r;
  pump(in[1], input, out[0], err[0], r);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

struct Record {
  std::uint8_t kind = 0;
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string name;
  std::string target;
};

// The entry records of README's layout, read here field by field rather than
// with protocol/file_entry's decoder, so the test checks the wire itself.
std::vector<Record> records(const std::string& out) {
  std::vector<Record> all;
  ByteReader r(as_bytes(out));
  auto string = [&r] { return std::string(as_chars(r.take(r.u32()))); };
  while (r.ok() && !r.at_end()) {
    Record e;
    e.kind = r.u8();
    e.mode = r.u32();
    e.size = r.u64();
    e.mtime_ns = static_cast<std::int64_t>(r.u64());
    e.uid = r.u32();
    e.gid = r.u32();
    e.name = string();
    e.target = string();
    all.push_back(e);
  }
  REQUIRE(r.ok());
  return all;
}

std::uint64_t fnv1a(std::string_view data) {
  std::uint64_t h = 1469598103934665603u;
  for (char c : data) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211u;
  return h;
}

std::string pseudo_random(std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

struct TempDir {
  std::string path;
  TempDir() {
    char name[] = "/tmp/file-tool-test-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void put(const std::string& path, const std::string& content) { std::ofstream(path, std::ios::binary) << content; }

std::string contents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.insert(e.path().filename());
  return names;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Sets the umask for one test: modes the tool promises exactly must not
// depend on it.
struct Umask {
  mode_t old;
  explicit Umask(mode_t m) : old(::umask(m)) {}
  ~Umask() { ::umask(old); }
};

}  // namespace

TEST_CASE("file tool: stat describes a file, a directory and a symlink without following it") {
  TempDir t;
  put(t / "f", "hello");
  REQUIRE(::chmod((t / "f").c_str(), 0640) == 0);
  REQUIRE(::mkdir((t / "d").c_str(), 0750) == 0);
  REQUIRE(::chmod((t / "d").c_str(), 0750) == 0);
  REQUIRE(::symlink("f", (t / "l").c_str()) == 0);

  auto r = run({"stat", t / "f"});
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  auto e = records(r.out);
  REQUIRE(e.size() == 1);
  struct stat st {};
  REQUIRE(::stat((t / "f").c_str(), &st) == 0);
  CHECK(e[0].kind == 1);
  CHECK(e[0].mode == 0640);
  CHECK(e[0].size == 5);
  CHECK(e[0].mtime_ns == st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
  CHECK(e[0].uid == ::getuid());
  CHECK(e[0].gid == st.st_gid);
  CHECK(e[0].name == "f");
  CHECK(e[0].target.empty());

  e = records(run({"stat", t / "d/"}).out);
  REQUIRE(e.size() == 1);
  CHECK(e[0].kind == 2);
  CHECK(e[0].mode == 0750);
  CHECK(e[0].name == "d");

  e = records(run({"stat", t / "l"}).out);
  REQUIRE(e.size() == 1);
  CHECK(e[0].kind == 3);
  CHECK(e[0].name == "l");
  CHECK(e[0].target == "f");
  CHECK(e[0].size == 1);

  e = records(run({"stat", "/"}).out);
  REQUIRE(e.size() == 1);
  CHECK(e[0].name == "/");

  e = records(run({"stat", "/dev/null"}).out);
  REQUIRE(e.size() == 1);
  CHECK(e[0].kind == 4);

  r = run({"stat", t / "missing"});
  CHECK(r.status == ENOENT);
  CHECK(r.out.empty());
  CHECK(r.err == "stat " + t / "missing" + ": No such file or directory\n");
}

TEST_CASE("file tool: list gives every entry but . and .., and one more than LIMIT when cut") {
  TempDir t;
  for (const char* name : {"a", "b", "c", "d", "e"}) put(t / name, name);
  REQUIRE(::mkdir((t / "sub").c_str(), 0755) == 0);
  REQUIRE(::symlink("a", (t / "s").c_str()) == 0);

  auto r = run({"list", t.path, "10"});
  REQUIRE(r.status == 0);
  auto e = records(r.out);
  std::set<std::string> names;
  for (const auto& x : e) {
    names.insert(x.name);
    if (x.name == "s") {
      CHECK(x.kind == 3);
      CHECK(x.target == "a");
    }
    if (x.name == "sub") CHECK(x.kind == 2);
    if (x.name == "a") CHECK(x.size == 1);
  }
  CHECK(names == std::set<std::string>{"a", "b", "c", "d", "e", "sub", "s"});
  CHECK(e.size() == 7);

  CHECK(records(run({"list", t.path, "7"}).out).size() == 7);  // not cut: exactly LIMIT
  CHECK(records(run({"list", t.path, "3"}).out).size() == 4);
  CHECK(records(run({"list", t.path, "0"}).out).size() == 1);

  r = run({"list", t / "sub", "5"});
  CHECK(r.status == 0);
  CHECK(r.out.empty());

  CHECK(run({"list", t / "a", "5"}).status == ENOTDIR);
  CHECK(run({"list", t / "missing", "5"}).status == ENOENT);
}

TEST_CASE("file tool: mkdir makes exactly MODE, with PARENTS the missing parents, and EEXIST without") {
  TempDir t;
  Umask umask(077);
  CHECK(run({"mkdir", t / "d", "755", "0"}).status == 0);
  CHECK(mode_of(t / "d") == 0755);
  auto r = run({"mkdir", t / "d", "755", "0"});
  CHECK(r.status == EEXIST);
  CHECK(r.err == "mkdir " + t / "d" + ": File exists\n");

  CHECK(run({"mkdir", t / "a/b/c", "0700", "0"}).status == ENOENT);
  CHECK_FALSE(exists(t / "a"));
  CHECK(run({"mkdir", t / "a/b/c", "0711", "1"}).status == 0);
  CHECK(mode_of(t / "a/b/c") == 0711);
  CHECK(mode_of(t / "a") == 0700);  // a parent: 0777 less the umask
  CHECK(run({"mkdir", t / "a/b/c", "0755", "1"}).status == 0);  // already there
  CHECK(mode_of(t / "a/b/c") == 0711);                            // and left alone

  put(t / "f", "x");
  CHECK(run({"mkdir", t / "f", "755", "1"}).status == EEXIST);  // a file is not a directory
  CHECK(run({"mkdir", t / "f/x", "755", "1"}).status == ENOTDIR);
}

TEST_CASE("file tool: remove refuses a non-empty directory unless RECURSIVE, and never follows a symlink") {
  TempDir t;
  REQUIRE(::mkdir((t / "outside").c_str(), 0755) == 0);
  put(t / "outside/keep", "keep");
  REQUIRE(::mkdir((t / "tree").c_str(), 0755) == 0);
  REQUIRE(::mkdir((t / "tree/sub").c_str(), 0755) == 0);
  REQUIRE(::mkdir((t / "tree/sub/deep").c_str(), 0700) == 0);
  put(t / "tree/a", "a");
  put(t / "tree/sub/deep/b", "b");
  REQUIRE(::symlink((t / "outside").c_str(), (t / "tree/sub/to-outside").c_str()) == 0);
  REQUIRE(::symlink((t / "outside/keep").c_str(), (t / "tree/to-keep").c_str()) == 0);
  REQUIRE(::mkfifo((t / "tree/fifo").c_str(), 0600) == 0);

  auto r = run({"remove", t / "tree", "0"});
  CHECK(r.status == ENOTEMPTY);
  CHECK(exists(t / "tree/a"));

  CHECK(run({"remove", t / "tree", "1"}).status == 0);
  CHECK_FALSE(exists(t / "tree"));
  CHECK(names_in(t / "outside") == std::set<std::string>{"keep"});
  CHECK(contents(t / "outside/keep") == "keep");

  // A symlink to a directory, even named with a trailing slash, is the link.
  REQUIRE(::symlink((t / "outside").c_str(), (t / "link").c_str()) == 0);
  CHECK(run({"remove", t / "link/", "1"}).status == 0);
  CHECK_FALSE(exists(t / "link"));
  CHECK(names_in(t / "outside") == std::set<std::string>{"keep"});

  CHECK(run({"remove", t / "outside/keep", "0"}).status == 0);
  CHECK(run({"remove", t / "outside", "0"}).status == 0);
  CHECK(names_in(t.path).empty());
  CHECK(run({"remove", t / "missing", "1"}).status == ENOENT);
}

TEST_CASE("file tool: rename with OVERWRITE 0 refuses an existing target") {
  TempDir t;
  put(t / "a", "a");
  put(t / "b", "b");
  auto r = run({"rename", t / "a", t / "b", "0"});
  CHECK(r.status == EEXIST);
  CHECK(r.err == "rename " + t / "a" + " to " + t / "b" + ": File exists\n");
  CHECK(contents(t / "a") == "a");
  CHECK(contents(t / "b") == "b");

  CHECK(run({"rename", t / "a", t / "c", "0"}).status == 0);
  CHECK(contents(t / "c") == "a");
  CHECK(run({"rename", t / "c", t / "b", "1"}).status == 0);
  CHECK(names_in(t.path) == std::set<std::string>{"b"});
  CHECK(contents(t / "b") == "a");
  CHECK(run({"rename", t / "missing", t / "x", "1"}).status == ENOENT);
}

TEST_CASE("file tool: chmod sets the mode bits, following a symlink") {
  TempDir t;
  put(t / "f", "x");
  REQUIRE(::symlink("f", (t / "l").c_str()) == 0);
  CHECK(run({"chmod", t / "f", "600"}).status == 0);
  CHECK(mode_of(t / "f") == 0600);
  CHECK(run({"chmod", t / "l", "4751"}).status == 0);
  CHECK(mode_of(t / "f") == 04751);
  CHECK(run({"chmod", t / "missing", "600"}).status == ENOENT);
}

TEST_CASE("file tool: read sends the size, then the contents of a regular file only") {
  TempDir t;
  const std::string big = pseudo_random(3u << 20);
  put(t / "big", big);
  auto r = run({"read", t / "big"});
  REQUIRE(r.status == 0);
  REQUIRE(r.out.size() == 8 + big.size());
  ByteReader header(as_bytes(r.out));
  CHECK(header.u64() == big.size());
  CHECK(fnv1a(std::string_view(r.out).substr(8)) == fnv1a(big));

  put(t / "empty", "");
  r = run({"read", t / "empty"});
  CHECK(r.status == 0);
  CHECK(r.out == std::string(8, '\0'));

  r = run({"read", t.path});
  CHECK(r.status == EISDIR);
  CHECK(r.out.empty());
  REQUIRE(::mkfifo((t / "fifo").c_str(), 0600) == 0);
  CHECK(run({"read", t / "fifo"}).status == EINVAL);  // refused, not waited on
  REQUIRE(::symlink("loop2", (t / "loop1").c_str()) == 0);
  REQUIRE(::symlink("loop1", (t / "loop2").c_str()) == 0);
  CHECK(run({"read", t / "loop1"}).status == ELOOP);
  CHECK(run({"read", t / std::string(300, 'n')}).status == ENAMETOOLONG);
  CHECK(run({"read", t / "missing"}).status == ENOENT);
}

TEST_CASE("file tool: write replaces PATH with exactly SIZE bytes of stdin, or leaves it as it was") {
  TempDir t;
  Umask umask(077);
  const std::string big = pseudo_random(3u << 20);
  auto r = run({"write", t / "big", std::to_string(big.size()), "-"}, big);
  REQUIRE(r.status == 0);
  CHECK(r.out.empty());
  CHECK(fnv1a(contents(t / "big")) == fnv1a(big));
  CHECK(mode_of(t / "big") == 0644);  // `-` for a new file
  CHECK(names_in(t.path) == std::set<std::string>{"big"});

  put(t / "f", "old");
  REQUIRE(::chmod((t / "f").c_str(), 0640) == 0);
  CHECK(run({"write", t / "f", "5", "-"}, "new contents").status == 0);  // the rest is not read
  CHECK(contents(t / "f") == "new c");
  CHECK(mode_of(t / "f") == 0640);  // `-` keeps the replaced file's mode
  CHECK(run({"write", t / "f", "3", "4755"}, "abc").status == 0);
  CHECK(mode_of(t / "f") == 04755);
  CHECK(run({"write", t / "empty", "0", "600"}).status == 0);
  CHECK(contents(t / "empty").empty());
  const std::string longest(255, 'n');
  CHECK(run({"write", t / longest, "1", "644"}, "x").status == 0);
  CHECK(contents(t / longest) == "x");
  REQUIRE(::unlink((t / longest).c_str()) == 0);

  r = run({"write", t / "f", "100", "644"}, "only ten b");
  CHECK(r.status == ECANCELED);
  CHECK(r.err == "write " + t / "f" + ": stdin ended after 10 of 100 bytes\n");
  CHECK(contents(t / "f") == "abc");
  CHECK(names_in(t.path) == std::set<std::string>{"big", "f", "empty"});

  CHECK(run({"write", t / "missing/f", "1", "644"}, "x").status == ENOENT);
  REQUIRE(::mkdir((t / "d").c_str(), 0755) == 0);
  CHECK(run({"write", t / "d", "1", "644"}, "x").status == EISDIR);
  CHECK(names_in(t / "d").empty());
  CHECK(names_in(t.path) == std::set<std::string>{"big", "f", "empty", "d"});
}

TEST_CASE("file tool: arguments it cannot use fail with EINVAL and change nothing") {
  TempDir t;
  const std::vector<std::vector<std::string>> bad = {
      {"stat"},
      {"stat", t / "a", "extra"},
      {"list", t.path, "ten"},
      {"list", t.path, "1000001"},
      {"list", t.path, "-1"},
      {"mkdir", t / "a", "8", "0"},
      {"mkdir", t / "a", "17777", "0"},
      {"mkdir", t / "a", "", "0"},
      {"mkdir", t / "a", "755", "2"},
      {"remove", t.path, "yes"},
      {"rename", t / "a", t / "b", ""},
      {"chmod", t.path, "rwx"},
      {"write", t / "a", "-1", "644"},
      {"write", t / "a", "18446744073709551616", "644"},
      {"write", t / "a", "1", "0x1ff"},
      {"frobnicate", t.path},
  };
  for (const auto& argv : bad) {
    INFO(argv[0] << " with " << argv.size() - 1 << " arguments");
    auto r = run(argv, "x");
    CHECK(r.status == EINVAL);
    CHECK_FALSE(r.err.empty());
    CHECK(r.err.back() == '\n');
  }
  CHECK(run({"list", t.path, "1000000"}).status == 0);
  CHECK(run({"write", t / "a", "18446744073709551615", "644"}, "x").status == ECANCELED);
  CHECK(names_in(t.path).empty());
  CHECK(file_tool_knows("write"));
  CHECK_FALSE(file_tool_knows("frobnicate"));
}

// The agent's side: a builtin exec forks, and the child runs the tool on the
// session's pipes. Only root may take another user's identity, as the child
// does even for root's own.
TEST_CASE("file tool: an exec with builtin 1 runs it on the exec's pipes, and sees stdin end") {
  if (::geteuid() != 0) {
    WARN("skipped: not root");
    return;
  }
  TempDir t;
  put(t / "f", "old");
  protocol::ExecStart request;
  request.builtin = protocol::Builtin::kFileTool;
  request.stdin_open = true;
  request.pty = protocol::Terminal{80, 24};  // ignored: a builtin has no terminal
  request.cwd = t.path;
  request.argv = {"write", "f", "100", "-"};

  ExecSession session(1);
  auto started = session.start(request);
  REQUIRE(started.started);
  REQUIRE(session.output_fd(1) >= 0);  // a stderr pipe: no terminal
  session.queue_stdin(Bytes(3, std::byte{'x'}), true);
  while (session.stdin_pending()) session.flush_stdin();
  // The child must not hold the write end of its own stdin: closing it here
  // is how the host cancels.
  session.close_stdin();
  Run r;
  pump(-1, {}, session.output_fd(0), session.output_fd(1), r);
  int status = 0;
  REQUIRE(::waitpid(session.pid(), &status, 0) == session.pid());
  CHECK(WEXITSTATUS(status) == ECANCELED);
  CHECK(r.err == "write f: stdin ended after 3 of 100 bytes\n");
  CHECK(contents(t / "f") == "old");

  request.argv = {"frobnicate"};
  ExecSession unknown(2);
  auto failed = unknown.start(request);
  CHECK_FALSE(failed.started);
  CHECK(failed.failure.kind == protocol::ExitKind::kStartFailed);
  CHECK(failed.failure.status == 127);
  CHECK(failed.failure.message == "no builtin 'frobnicate'");
}

TEST_CASE("file tool: statfs reports a file system's size and use; resize sets a tmpfs's size, nothing else's") {
  TempDir dir;
  std::string mnt = dir / "tmpfs";
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
  if (::mount("test", mnt.c_str(), "tmpfs", 0, "size=8m") != 0) {
    WARN("cannot mount a tmpfs here (not root?): " << std::strerror(errno));
    CHECK(errno == EPERM);
    return;
  }
  // Read-only where the tool is pointed, as the writable layer is in a guest.
  std::string view = dir / "view";
  REQUIRE(::mkdir(view.c_str(), 0755) == 0);
  REQUIRE(::mount(mnt.c_str(), view.c_str(), nullptr, MS_BIND, nullptr) == 0);
  REQUIRE(::mount(nullptr, view.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == 0);
  auto usage = [](const std::string& path) {
    Run r = run({"statfs", path});
    REQUIRE(r.status == 0);
    sandboxd::ByteReader in(sandboxd::as_bytes(r.out));
    std::array<std::uint64_t, 3> v{in.u64(), in.u64(), in.u64()};
    REQUIRE(in.ok());
    REQUIRE(in.at_end());
    return v;
  };
  CHECK(usage(view)[0] == 8u << 20);
  put(mnt + "/blob", std::string(3u << 20, 'x'));
  auto used = usage(view);
  CHECK(used[1] >= 3u << 20);
  CHECK(used[2] <= (5u << 20));
  CHECK(run({"resize", view, "16"}).status == 0);
  CHECK(usage(view)[0] == 16u << 20);
  // The bind stays read-only: only the superblock changed.
  CHECK(::access((view + "/blob").c_str(), W_OK) != 0);
  CHECK(errno == EROFS);
  CHECK(run({"resize", view, "1"}).status == EINVAL);  // below what it holds
  CHECK(usage(view)[0] == 16u << 20);
  CHECK(run({"resize", "/proc", "16"}).status == EINVAL);  // not a tmpfs: procfs has no size
  CHECK(run({"resize", view, "0"}).status == EINVAL);
  CHECK(run({"statfs", dir / "missing"}).status == ENOENT);
  ::umount2(view.c_str(), MNT_DETACH);
  ::umount2(mnt.c_str(), MNT_DETACH);
}
