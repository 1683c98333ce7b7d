// FsServer against a scripted guest on the other end of a socketpair:
// mounting once the bridge is ready, answering from the provider, what a
// hostile guest's frames do (dropped, counted, the server goes on), the
// bounds on answers in flight and queued, and a stream that lost its step.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "daemon/vfs/fs_server.hpp"
#include "daemon/vfs/memory_provider.hpp"
#include "protocol/fs_codec.hpp"

using namespace sandboxd;
namespace fs = sandboxd::protocol::fs;
using sandboxd::vfs::FsServer;

namespace {

// The guest's end: blocking writes, reads that wait a bounded time.
struct Guest {
  int fd = -1;
  fs::FrameSplitter splitter;
  ~Guest() {
    if (fd >= 0) ::close(fd);
  }
  void send_raw(ByteSpan bytes) const {
    std::size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
  }
  void send(const fs::Frame& f) const { send_raw(fs::encode(f)); }
  // Reads what is there without blocking; true when something came.
  bool pump() {
    std::byte buf[65536];
    bool got = false;
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return got;
      splitter.feed(ByteSpan(buf, static_cast<std::size_t>(n)));
      got = true;
    }
  }
  std::optional<fs::Frame> next() {
    auto body = splitter.next();
    if (!body) return std::nullopt;
    auto frame = fs::decode_body(*body);
    REQUIRE(frame);
    return std::move(*frame);
  }
};

struct Rig {
  boost::asio::io_context io;
  boost::asio::thread_pool workers{1};
  std::shared_ptr<FsServer> server;
  Guest guest;

  explicit Rig(std::chrono::milliseconds mount_wait = FsServer::kMountWait) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    guest.fd = fds[1];
    FsServer::Socket host(io, boost::asio::local::stream_protocol(), fds[0]);
    server = FsServer::start(std::move(host), workers.get_executor(), mount_wait);
  }
  ~Rig() {
    server->stop();
    workers.join();
  }

  // Runs the loop until the guest has a frame, or fails after `limit`.
  fs::Frame expect_frame(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (auto f = guest.next()) return std::move(*f);
      REQUIRE(std::chrono::steady_clock::now() < until);
      io.run_for(std::chrono::milliseconds(5));
      guest.pump();
    }
  }
  void run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      REQUIRE(std::chrono::steady_clock::now() < until);
      io.run_for(std::chrono::milliseconds(5));
    }
  }

  // Mounts a memory provider holding `files` at /m and plays the bridge's side.
  std::uint32_t mount(const std::vector<vfs::MemoryFile>& files) {
    auto provider = vfs::MemoryProvider::create(files, {});
    REQUIRE(provider);
    std::optional<Expected<void, std::string>> outcome;
    server->mount({"/m", std::shared_ptr<vfs::Provider>(std::move(*provider)), false},
                  [&](Expected<void, std::string> r) { outcome = std::move(r); });
    guest.send(fs::Ready{});
    auto frame = expect_frame();
    auto* m = std::get_if<fs::Mount>(&frame);
    REQUIRE(m);
    CHECK(m->path == "/m");
    guest.send(fs::MountResult{m->mount_id, 0, ""});
    run_until([&] { return outcome.has_value(); });
    REQUIRE(*outcome);
    return m->mount_id;
  }
};

fs::Request lookup(std::uint64_t unique, std::uint32_t mount, std::string name) {
  fs::Request r;
  r.unique = unique;
  r.mount_id = mount;
  r.op = fs::Op::kLookup;
  r.node = fs::kRootNode;
  r.name = std::move(name);
  return r;
}

fs::Reply expect_reply(Rig& rig) {
  auto frame = rig.expect_frame();
  auto* reply = std::get_if<fs::Reply>(&frame);
  REQUIRE(reply);
  return *reply;
}

}  // namespace

TEST_CASE("fs server: mounts once the bridge is ready, then answers from the provider") {
  Rig rig;
  std::uint32_t mount = rig.mount({{"hello.txt", "hi\n", 0644}});
  rig.guest.send(lookup(7, mount, "hello.txt"));
  fs::Reply reply = expect_reply(rig);
  CHECK(reply.unique == 7);
  REQUIRE(reply.error == 0);
  auto body = fs::decode_reply_body(fs::Op::kLookup, reply.body);
  REQUIRE(body);
  CHECK(body->entry.attr.size == 3);

  rig.guest.send(lookup(8, mount, "missing"));
  reply = expect_reply(rig);
  CHECK((reply.unique == 8 && reply.error == ENOENT));

  // A mount the server never made.
  rig.guest.send(lookup(9, mount + 100, "hello.txt"));
  reply = expect_reply(rig);
  CHECK((reply.unique == 9 && reply.error == ENOENT));
}

TEST_CASE("fs server: frames that do not decode are dropped and counted; the server goes on") {
  Rig rig;
  std::uint32_t mount = rig.mount({{"f", "x", 0644}});
  const std::uint8_t garbage[][6] = {
      {0, 0, 0, 2, 1, 0x7f},  // unknown type
      {0, 0, 0, 2, 9, 0x03},  // another version
      {0, 0, 0, 2, 1, 0x83},  // a host's frame (Reply) from the guest
  };
  for (const auto& g : garbage) rig.guest.send_raw(as_bytes(std::string_view(reinterpret_cast<const char*>(g), 6)));
  fs::Request bad_name = lookup(1, mount, "x");
  Bytes encoded = fs::encode(bad_name);
  encoded.back() = std::byte{'/'};  // "/" is no name: the frame does not decode
  rig.guest.send_raw(encoded);
  rig.guest.send(lookup(2, mount, "f"));
  fs::Reply reply = expect_reply(rig);
  CHECK(reply.unique == 2);
  CHECK(reply.error == 0);
  CHECK(rig.server->stats().bad_frames == 4);
  CHECK_FALSE(rig.server->stats().broken);
}

TEST_CASE("fs server: a guest that never reads its answers stops being read") {
  Rig rig;
  const std::string big(fs::kMaxData, 'z');
  std::uint32_t mount = rig.mount({{"big", big, 0644}});
  rig.guest.send(lookup(1, mount, "big"));
  fs::Reply looked = expect_reply(rig);
  REQUIRE(looked.error == 0);
  std::uint64_t node = fs::decode_reply_body(fs::Op::kLookup, looked.body)->entry.node;
  fs::Request open;
  open.unique = 2;
  open.mount_id = mount;
  open.op = fs::Op::kOpen;
  open.node = node;
  open.flags = O_RDONLY;
  rig.guest.send(open);
  fs::Reply opened = expect_reply(rig);
  REQUIRE(opened.error == 0);
  std::uint64_t handle = fs::decode_reply_body(fs::Op::kOpen, opened.body)->open.handle;

  // 200 reads of 1 MiB each, none of whose answers is read for now.
  constexpr int kReads = 200;
  Bytes requests;
  for (int i = 0; i < kReads; ++i) {
    fs::Request read;
    read.unique = 100 + static_cast<std::uint64_t>(i);
    read.mount_id = mount;
    read.op = fs::Op::kRead;
    read.node = node;
    read.handle = handle;
    read.size = fs::kMaxData;
    fs::encode(read, requests);
  }
  rig.guest.send_raw(requests);
  for (int i = 0; i < 100; ++i) rig.io.run_for(std::chrono::milliseconds(10));
  auto stats = rig.server->stats();
  INFO("requests " << stats.requests << ", queued " << stats.queued_bytes);
  CHECK(stats.requests < 2 + kReads);
  CHECK(stats.in_flight <= FsServer::kMaxInFlight);
  CHECK(stats.queued_bytes <= FsServer::kMaxQueuedBytes + 2 * fs::kMaxFrameBody);

  // Once the guest reads, every read is answered, in full.
  int answered = 0;
  while (answered < kReads) {
    fs::Reply reply = expect_reply(rig);
    REQUIRE(reply.error == 0);
    CHECK(fs::decode_reply_body(fs::Op::kRead, reply.body)->data.size() == fs::kMaxData);
    ++answered;
  }
  CHECK(rig.server->stats().queued_bytes == 0);
}

TEST_CASE("fs server: a length no frame can have ends the mounts, and the port is still drained") {
  Rig rig;
  std::uint32_t mount = rig.mount({{"f", "x", 0644}});
  std::optional<Expected<void, std::string>> second;
  auto provider = vfs::MemoryProvider::create({}, {});
  rig.server->mount({"/n", std::shared_ptr<vfs::Provider>(std::move(*provider)), false},
                    [&](Expected<void, std::string> r) { second = std::move(r); });
  (void)rig.expect_frame();  // its Mount, never answered
  const std::uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 1, 3};
  rig.guest.send_raw(as_bytes(std::string_view(reinterpret_cast<const char*>(huge), sizeof huge)));
  rig.run_until([&] { return second.has_value(); });
  CHECK_FALSE(*second);
  CHECK(rig.server->stats().broken);
  CHECK(rig.server->stats().mounts == 0);

  // Far more than a socket buffer holds: written only because the server
  // goes on reading (and dropping) it.
  ::fcntl(rig.guest.fd, F_SETFL, O_NONBLOCK);
  std::string junk(1 << 16, 'j');
  std::size_t written = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (written < (16u << 20) && std::chrono::steady_clock::now() < until) {
    ssize_t n = ::write(rig.guest.fd, junk.data(), junk.size());
    if (n > 0) written += static_cast<std::size_t>(n);
    rig.io.run_for(std::chrono::milliseconds(1));
  }
  CHECK(written >= (16u << 20));
  // Nothing it sent is answered.
  rig.guest.send(lookup(5, mount, "f"));
  for (int i = 0; i < 20; ++i) rig.io.run_for(std::chrono::milliseconds(5));
  rig.guest.pump();
  CHECK_FALSE(rig.guest.next().has_value());
}

TEST_CASE("fs server: a mount the bridge never takes fails after the wait") {
  Rig rig(std::chrono::milliseconds(200));
  std::optional<Expected<void, std::string>> outcome;
  auto provider = vfs::MemoryProvider::create({}, {});
  rig.server->mount({"/m", std::shared_ptr<vfs::Provider>(std::move(*provider)), false},
                    [&](Expected<void, std::string> r) { outcome = std::move(r); });
  rig.run_until([&] { return outcome.has_value(); });
  REQUIRE_FALSE(*outcome);
  CHECK(outcome->error().find("did not start") != std::string::npos);
  CHECK(rig.server->stats().mounts == 0);
}

TEST_CASE("fs server: a bridge that starts again gets its mounts again") {
  Rig rig;
  std::uint32_t mount = rig.mount({{"f", "x", 0644}});
  rig.guest.send(fs::Ready{});
  auto frame = rig.expect_frame();
  auto* again = std::get_if<fs::Mount>(&frame);
  REQUIRE(again);
  CHECK(again->mount_id == mount);
  rig.guest.send(fs::MountResult{mount, 0, ""});
  rig.guest.send(lookup(3, mount, "f"));
  fs::Reply reply = expect_reply(rig);
  CHECK((reply.unique == 3 && reply.error == 0));
}
