// The real sandbox-agent's mounts bridge (--fs-serve-fd) over a socketpair,
// with a real FUSE mount on this machine: the test's main thread plays the
// host, answering the bridge's requests from a small file system of its
// own, while client threads play the guest's processes using the mount.
//
// Needs root and /dev/fuse (the bridge mounts with mount(2)); CI has both.
// A client's system call blocks until the host answers, so whatever fails,
// the bridge is killed before the clients are joined: its FUSE connections
// then abort and every blocked call returns.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "protocol/fs_codec.hpp"

using namespace sandboxd;
namespace fs = sandboxd::protocol::fs;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// Waits until `pid` has exited (its pidfd is readable); true if it did within `limit`.
bool wait_until_exited(pid_t pid, std::chrono::milliseconds limit) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  int ready;
  auto until = Clock::now() + limit;
  do {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    ready = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
  } while (ready < 0 && errno == EINTR);
  ::close(fd);
  return ready > 0;
}

// `path` is a mount point in this mount namespace.
bool mounted(const std::string& path) {
  std::ifstream info("/proc/self/mountinfo");
  std::string line;
  while (std::getline(info, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point == path) return true;
  }
  return false;
}

// What a client thread saw.
struct Outcome {
  int error = 0;  // errno of the call that failed, 0 if none did
  struct stat st {};
  std::string data;
  std::vector<std::string> names;
};

// One guest process: a thread running `body` once.
class Client {
 public:
  explicit Client(std::function<Outcome()> body)
      : thread_([this, body = std::move(body)] {
          outcome_ = body();
          done_ = true;
        }) {}
  ~Client() { thread_.join(); }
  bool done() const { return done_; }
  const Outcome& outcome() const { return outcome_; }

 private:
  Outcome outcome_;
  std::atomic<bool> done_{false};
  std::thread thread_;  // last: it starts once the rest exists
};

Outcome stat_of(const std::string& path) {
  Outcome o;
  if (::stat(path.c_str(), &o.st) != 0) o.error = errno;
  return o;
}

Outcome read_file(const std::string& path) {
  Outcome o;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    o.error = errno;
    return o;
  }
  char buf[256];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) o.data.append(buf, static_cast<std::size_t>(n));
  if (n < 0) o.error = errno;
  ::close(fd);
  return o;
}

Outcome list_directory(const std::string& path) {
  Outcome o;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) {
    o.error = errno;
    return o;
  }
  errno = 0;
  while (dirent* e = ::readdir(d)) o.names.emplace_back(e->d_name);
  if (errno != 0) o.error = errno;
  ::closedir(d);
  return o;
}

// The host's file system: a root directory holding the file "hello".
// Requests `hold` picks are kept unanswered in `held`; a lookup of
// "corrupt" is answered with a body that does not decode.
struct HelloFs {
  static constexpr std::uint64_t kHello = 2;
  static constexpr std::uint64_t kFileHandle = 7;
  static constexpr std::uint64_t kDirHandle = 8;
  std::string contents = "hi\n";
  std::function<bool(const fs::Request&)> hold = [](const fs::Request&) { return false; };
  std::vector<fs::Request> held;
  std::vector<fs::Request> seen;

  static fs::Attr attr_of(std::uint64_t node, std::size_t size) {
    fs::Attr a;
    a.ino = node;
    a.mode = node == fs::kRootNode ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    a.nlink = node == fs::kRootNode ? 2 : 1;
    a.size = node == fs::kRootNode ? 0 : size;
    a.blksize = 4096;
    return a;
  }
  static fs::Reply ok(const fs::Request& r, const fs::ReplyBody& body) {
    return fs::Reply{r.unique, 0, fs::encode_reply_body(r.op, body)};
  }
  static fs::Reply error(const fs::Request& r, int e) { return fs::Reply{r.unique, e, {}}; }

  // The answer to `r`, or nothing yet.
  std::optional<fs::Reply> answer(const fs::Request& r) {
    seen.push_back(r);
    if (hold(r)) {
      held.push_back(r);
      return std::nullopt;
    }
    return respond(r);
  }

  fs::Reply respond(const fs::Request& r) {
    fs::ReplyBody body;
    bool known = r.node == fs::kRootNode || r.node == kHello;
    switch (r.op) {
      case fs::Op::kLookup:
        if (r.name == "corrupt") return fs::Reply{r.unique, 0, Bytes{std::byte{1}, std::byte{2}, std::byte{3}}};
        if (r.node != fs::kRootNode || r.name != "hello") return error(r, ENOENT);
        body.entry = fs::Entry{kHello, 0, attr_of(kHello, contents.size()), 0, 0};
        return ok(r, body);
      case fs::Op::kGetattr:
        if (!known) return error(r, ENOENT);
        body.attr = attr_of(r.node, contents.size());
        return ok(r, body);
      case fs::Op::kOpen:
        if (r.node != kHello) return error(r, EISDIR);
        body.open = fs::OpenFile{kFileHandle, false, false};
        return ok(r, body);
      case fs::Op::kRead: {
        if (r.node != kHello || r.handle != kFileHandle) return error(r, EBADF);
        std::size_t from = std::min<std::size_t>(r.offset, contents.size());
        std::string part = contents.substr(from, r.size);
        body.data.assign(reinterpret_cast<const std::byte*>(part.data()),
                         reinterpret_cast<const std::byte*>(part.data()) + part.size());
        return ok(r, body);
      }
      case fs::Op::kOpendir:
        if (r.node != fs::kRootNode) return error(r, ENOTDIR);
        body.open = fs::OpenFile{kDirHandle, false, false};
        return ok(r, body);
      case fs::Op::kReaddir:
        if (r.node != fs::kRootNode || r.handle != kDirHandle) return error(r, EBADF);
        if (r.offset == 0) body.entries.push_back(fs::DirEntry{kHello, 1, S_IFREG, "hello"});
        return ok(r, body);
      case fs::Op::kRelease:
      case fs::Op::kReleasedir:
        return ok(r, body);
      case fs::Op::kStatfs:
        return error(r, EIO);
      default:
        return error(r, ENOSYS);
    }
  }
};

// The bridge process and the host's end of its port, with a mount
// directory under a fresh temporary one.
class BridgeFixture {
 public:
  BridgeFixture() {
    INFO("this test needs /dev/fuse and root: the bridge mounts with mount(2)");
    REQUIRE(::access("/dev/fuse", R_OK | W_OK) == 0);
    REQUIRE(::geteuid() == 0);
    const char* binary = std::getenv("SANDBOX_AGENT");
    REQUIRE(binary != nullptr);
    char dir[] = "/tmp/fs-bridge-test-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    dir_ = dir;
    // Two levels the bridge must create.
    mount_point_ = dir_ + "/a/mnt";

    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    fd_ = fds[0];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 3);  // dup2 clears close-on-exec
    std::string path = binary;
    char* argv[] = {path.data(), const_cast<char*>("--fs-serve-fd"), const_cast<char*>("3"), nullptr};
    REQUIRE(::posix_spawn(&pid_, binary, &fa, nullptr, argv, environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    auto ready = try_next(10s);
    if (!ready || !std::holds_alternative<fs::Ready>(*ready)) {
      // The destructor does not run for a constructor that fails.
      ::close(fd_);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      ::rmdir(dir_.c_str());
      FAIL("the bridge did not start with Ready");
    }
  }

  ~BridgeFixture() {
    if (fd_ >= 0) ::close(fd_);
    if (pid_ > 0) {
      // A bridge that did not end with its port is killed, which aborts its
      // mounts and so unblocks every client.
      if (!wait_until_exited(pid_, 5s)) ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    clients_.clear();
    if (!dir_.empty()) {
      ::umount2(mount_point_.c_str(), MNT_DETACH);
      ::rmdir(mount_point_.c_str());
      ::rmdir((dir_ + "/a").c_str());
      ::rmdir(dir_.c_str());
    }
  }

  const std::string& mount_point() const { return mount_point_; }
  std::string path(const std::string& name) const { return mount_point_ + "/" + name; }

  void send(const fs::Frame& f) { send_raw(fs::encode(f)); }
  void send_raw(const Bytes& b) {
    std::size_t off = 0;
    while (off < b.size()) {
      ssize_t n = ::send(fd_, b.data() + off, b.size() - off, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
  }

  // The next frame from the bridge; fails the test after `limit`.
  fs::Frame next(std::chrono::milliseconds limit = 10s) {
    auto f = try_next(limit);
    REQUIRE(f.has_value());
    return std::move(*f);
  }
  std::optional<fs::Frame> try_next(std::chrono::milliseconds limit) {
    auto until = Clock::now() + limit;
    for (;;) {
      if (auto body = splitter_.next()) {
        auto frame = fs::decode_body(*body);
        if (!frame) FAIL("the bridge sent a frame that does not decode: " << frame.error().reason);
        return std::move(*frame);
      }
      REQUIRE_FALSE(splitter_.failed());
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      std::byte buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      splitter_.feed(ByteSpan(buf, static_cast<std::size_t>(n)));
    }
  }

  fs::MountResult mount(std::uint32_t id, bool read_only = false) {
    send(fs::Mount{id, read_only, mount_point_});
    auto f = next();
    REQUIRE(std::holds_alternative<fs::MountResult>(f));
    return std::get<fs::MountResult>(f);
  }

  Client& client(std::function<Outcome()> body) {
    clients_.push_back(std::make_unique<Client>(std::move(body)));
    return *clients_.back();
  }

  // Plays the host, answering from `host`, until `done` holds; fails the
  // test if it does not within `limit`.
  void serve_until(HelloFs& host, const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    auto until = Clock::now() + limit;
    while (!done()) {
      REQUIRE(Clock::now() < until);
      auto f = try_next(20ms);
      if (!f) continue;
      if (auto* r = std::get_if<fs::Request>(&*f)) {
        CHECK(r->mount_id == mount_id_);
        if (auto reply = host.answer(*r)) send(*reply);
      } else if (std::holds_alternative<fs::Forget>(*f)) {
        ++forgets_;
      } else {
        FAIL("the bridge sent an unexpected frame (index " << f->index() << ")");
      }
    }
  }
  void serve_for(HelloFs& host, std::chrono::milliseconds how_long) {
    auto until = Clock::now() + how_long;
    serve_until(
        host, [&] { return Clock::now() >= until; }, how_long + 1s);
  }

  // Hangs up and returns the bridge's wait status (-1 if it did not exit in time).
  int hang_up_and_wait() {
    ::close(fd_);
    fd_ = -1;
    return wait_exit();
  }
  int wait_exit() {
    int status = 0;
    if (!wait_until_exited(pid_, 5s) || ::waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return status;
  }

  void expect_mount_id(std::uint32_t id) { mount_id_ = id; }

 private:
  std::string dir_, mount_point_;
  int fd_ = -1;
  pid_t pid_ = -1;
  fs::FrameSplitter splitter_;
  std::uint32_t mount_id_ = 1;
  int forgets_ = 0;
  std::list<std::unique_ptr<Client>> clients_;
};

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
  auto until = Clock::now() + limit;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(2ms);  // the polling interval, not a guess at a duration
  }
}

}  // namespace

TEST_CASE("fs bridge: serves stat, read and readdir of a mount from the host's answers") {
  BridgeFixture bridge;
  auto result = bridge.mount(1);
  REQUIRE(result.mount_id == 1);
  REQUIRE(result.error == 0);
  REQUIRE(mounted(bridge.mount_point()));

  HelloFs host;
  std::string root = bridge.mount_point();
  Client& root_stat = bridge.client([=] { return stat_of(root); });
  Client& file_stat = bridge.client([=] { return stat_of(root + "/hello"); });
  Client& reader = bridge.client([=] { return read_file(root + "/hello"); });
  Client& lister = bridge.client([=] { return list_directory(root); });
  bridge.serve_until(host, [&] { return root_stat.done() && file_stat.done() && reader.done() && lister.done(); });

  CHECK(root_stat.outcome().error == 0);
  CHECK(S_ISDIR(root_stat.outcome().st.st_mode));
  CHECK(file_stat.outcome().error == 0);
  CHECK(S_ISREG(file_stat.outcome().st.st_mode));
  CHECK(file_stat.outcome().st.st_size == 3);
  CHECK(file_stat.outcome().st.st_ino == HelloFs::kHello);
  CHECK(reader.outcome().error == 0);
  CHECK(reader.outcome().data == "hi\n");
  CHECK(lister.outcome().error == 0);
  CHECK(lister.outcome().names == std::vector<std::string>{"hello"});

  // Each request names its caller and has its own unique.
  std::set<std::uint64_t> uniques;
  for (const auto& r : host.seen) {
    uniques.insert(r.unique);
    // The kernel sends releases on its own, for no process.
    if (r.op == fs::Op::kRelease || r.op == fs::Op::kReleasedir) continue;
    CHECK(r.uid == ::geteuid());
    CHECK(r.gid == ::getegid());
    CHECK(r.pid != 0);
  }
  CHECK(uniques.size() == host.seen.size());
  auto saw = [&](fs::Op op) {
    return std::any_of(host.seen.begin(), host.seen.end(), [&](const fs::Request& r) { return r.op == op; });
  };
  CHECK(saw(fs::Op::kLookup));
  CHECK(saw(fs::Op::kOpen));
  CHECK(saw(fs::Op::kRead));
  CHECK(saw(fs::Op::kReaddir));

  // The release of the file and the directory may trail the closes.
  bridge.serve_until(host, [&] { return saw(fs::Op::kRelease) && saw(fs::Op::kReleasedir); });

  bridge.send(fs::Unmount{1});
  CHECK(eventually([&] { return !mounted(bridge.mount_point()); }));
  CHECK(bridge.hang_up_and_wait() == 0);
}

TEST_CASE("fs bridge: drops bad frames and replies, and fails what waits with EIO at unmount") {
  BridgeFixture bridge;
  REQUIRE(bridge.mount(1).error == 0);
  HelloFs host;
  std::string root = bridge.mount_point();

  // A reply nothing waits for, a frame of an unknown type, one of another
  // version and one only the guest sends: each is dropped.
  bridge.send(fs::Reply{999999, 0, {}});
  bridge.send_raw(
      Bytes{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{2}, std::byte{fs::kVersion}, std::byte{0x7f}});
  bridge.send_raw(Bytes{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{2}, std::byte{0xee},
                        std::byte{static_cast<std::uint8_t>(fs::FrameType::kUnmount)}});
  bridge.send(fs::Ready{});
  // A second mount with the same id is refused, and says so.
  auto again = bridge.mount(1);
  CHECK(again.error == EEXIST);

  // A reply whose body does not decode for its op: the kernel hears EIO.
  Client& corrupt = bridge.client([=] { return stat_of(root + "/corrupt"); });
  bridge.serve_until(host, [&] { return corrupt.done(); });
  CHECK(corrupt.outcome().error == EIO);

  // Still serving.
  Client& reader = bridge.client([=] { return read_file(root + "/hello"); });
  bridge.serve_until(host, [&] { return reader.done(); });
  CHECK(reader.outcome().error == 0);
  CHECK(reader.outcome().data == "hi\n");

  // A request the host never answers fails with EIO when the mount goes.
  host.hold = [](const fs::Request& r) { return r.op == fs::Op::kLookup && r.name == "slow"; };
  Client& slow = bridge.client([=] { return stat_of(root + "/slow"); });
  bridge.serve_until(host, [&] { return !host.held.empty(); });
  CHECK_FALSE(slow.done());
  bridge.send(fs::Unmount{1});
  CHECK(eventually([&] { return slow.done(); }));
  CHECK(slow.outcome().error == EIO);
  CHECK(eventually([&] { return !mounted(bridge.mount_point()); }));
  // Its late answer is dropped like any unknown one.
  bridge.send(HelloFs::error(host.held.front(), ENOENT));

  // Mounted again under a new id, it serves again.
  bridge.expect_mount_id(2);
  REQUIRE(bridge.mount(2).error == 0);
  host.hold = [](const fs::Request&) { return false; };
  Client& again_reader = bridge.client([=] { return read_file(root + "/hello"); });
  bridge.serve_until(host, [&] { return again_reader.done(); });
  CHECK(again_reader.outcome().data == "hi\n");

  CHECK(bridge.hang_up_and_wait() == 0);
  CHECK_FALSE(mounted(bridge.mount_point()));
}

TEST_CASE("fs bridge: has at most kMaxInFlight requests outstanding; the kernel holds the rest") {
  BridgeFixture bridge;
  REQUIRE(bridge.mount(1).error == 0);
  HelloFs host;
  // Attribute requests for one node, unlike lookups in one directory, are
  // not serialised by the kernel (libfuse 3.14 never asks for parallel
  // directory operations): each client's stat is one request in flight.
  host.hold = [](const fs::Request& r) { return r.op == fs::Op::kGetattr && r.node == fs::kRootNode; };
  std::string root = bridge.mount_point();
  constexpr std::size_t kClients = fs::kMaxInFlight + 16;
  std::vector<Client*> clients;
  for (std::size_t i = 0; i < kClients; ++i) clients.push_back(&bridge.client([=] { return stat_of(root); }));

  bridge.serve_until(host, [&] { return host.held.size() >= fs::kMaxInFlight; });
  // Proving that no more come needs a while of nothing: this is that while.
  bridge.serve_for(host, 300ms);
  CHECK(host.held.size() == fs::kMaxInFlight);

  // Answered, the held ones make room for the rest.
  auto all_done = [&] { return std::all_of(clients.begin(), clients.end(), [](Client* c) { return c->done(); }); };
  std::size_t answered = 0;
  bridge.serve_until(host, [&] {
    for (; answered < host.held.size(); ++answered) bridge.send(host.respond(host.held[answered]));
    return all_done();
  });
  CHECK(host.held.size() == kClients);
  for (Client* c : clients) {
    CHECK(c->outcome().error == 0);
    CHECK(S_ISDIR(c->outcome().st.st_mode));
  }
  CHECK(bridge.hang_up_and_wait() == 0);
}

TEST_CASE("fs bridge: a frame length the protocol cannot have ends it, unmounting everything") {
  BridgeFixture bridge;
  REQUIRE(bridge.mount(1).error == 0);
  REQUIRE(mounted(bridge.mount_point()));
  bridge.send_raw(Bytes{std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}});
  CHECK(bridge.wait_exit() == 0);
  CHECK_FALSE(mounted(bridge.mount_point()));
}

TEST_CASE("fs bridge: a mount unmounted in the guest is let go, and its id can be mounted again") {
  BridgeFixture bridge;
  REQUIRE(bridge.mount(1).error == 0);
  REQUIRE(::umount2(bridge.mount_point().c_str(), 0) == 0);
  // The bridge hears of it when the FUSE device says so; until then the id is in use.
  auto until = Clock::now() + 5s;
  std::int32_t error = EEXIST;
  while (error == EEXIST && Clock::now() < until) error = bridge.mount(1).error;
  CHECK(error == 0);
  CHECK(mounted(bridge.mount_point()));

  HelloFs host;
  std::string root = bridge.mount_point();
  Client& reader = bridge.client([=] { return read_file(root + "/hello"); });
  bridge.serve_until(host, [&] { return reader.done(); });
  CHECK(reader.outcome().data == "hi\n");
  CHECK(bridge.hang_up_and_wait() == 0);
}
