// dispatch: what reaches a provider, what a read-only mount refuses, and
// that every answer decodes with the guest's decoder.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <new>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "daemon/vfs/dispatch.hpp"
#include "daemon/vfs/memory_provider.hpp"
#include "protocol/fs_codec.hpp"

using namespace sandboxd;
using namespace sandboxd::vfs;
using wire::Op;

namespace {

// Records each call with its arguments and answers `error` (or what
// `behaviour` does first).
class FakeProvider final : public Provider {
 public:
  std::vector<std::string> calls;
  std::vector<std::pair<NodeId, std::uint64_t>> forgotten;
  int error = ENOSYS;
  std::function<void()> behaviour;

  Result<wire::Entry> lookup(NodeId parent, std::string_view name) override { return note("lookup", parent, name); }
  void forget(NodeId node, std::uint64_t nlookup) override { forgotten.emplace_back(node, nlookup); }
  Result<wire::Attr> getattr(NodeId node, Handle handle) override { return note("getattr", node, handle); }
  Result<wire::Attr> setattr(NodeId node, const wire::Request& r, const Caller& c) override {
    return note("setattr", node, r.set, c.uid, c.gid, c.pid);
  }
  Result<std::string> readlink(NodeId node) override { return note("readlink", node); }
  Result<wire::Entry> mknod(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t rdev,
                            const Caller& c) override {
    return note("mknod", parent, name, mode, rdev, c.uid);
  }
  Result<wire::Entry> mkdir(NodeId parent, std::string_view name, std::uint32_t mode, const Caller& c) override {
    return note("mkdir", parent, name, mode, c.uid);
  }
  Result<void> unlink(NodeId parent, std::string_view name) override { return note("unlink", parent, name); }
  Result<void> rmdir(NodeId parent, std::string_view name) override { return note("rmdir", parent, name); }
  Result<wire::Entry> symlink(NodeId parent, std::string_view name, std::string_view target, const Caller& c) override {
    return note("symlink", parent, name, target, c.uid);
  }
  Result<void> rename(NodeId parent, std::string_view name, NodeId new_parent, std::string_view new_name,
                      std::uint32_t flags) override {
    return note("rename", parent, name, new_parent, new_name, flags);
  }
  Result<wire::Entry> link(NodeId node, NodeId new_parent, std::string_view new_name) override {
    return note("link", node, new_parent, new_name);
  }
  Result<wire::OpenFile> open(NodeId node, std::uint32_t flags) override { return note("open", node, flags); }
  Result<Created> create(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t flags,
                         const Caller& c) override {
    return note("create", parent, name, mode, flags, c.gid);
  }
  Result<Bytes> read(NodeId node, Handle handle, std::uint64_t offset, std::uint32_t size) override {
    return note("read", node, handle, offset, size);
  }
  Result<std::uint32_t> write(NodeId node, Handle handle, std::uint64_t offset, ByteSpan data) override {
    return note("write", node, handle, offset, data.size());
  }
  Result<void> flush(NodeId node, Handle handle) override { return note("flush", node, handle); }
  Result<void> release(NodeId node, Handle handle) override { return note("release", node, handle); }
  Result<void> fsync(NodeId node, Handle handle, bool datasync) override {
    return note("fsync", node, handle, datasync);
  }
  Result<wire::OpenFile> opendir(NodeId node) override { return note("opendir", node); }
  Result<std::vector<wire::DirEntry>> readdir(NodeId node, Handle handle, std::uint64_t offset,
                                              std::uint32_t size) override {
    return note("readdir", node, handle, offset, size);
  }
  Result<void> releasedir(NodeId node, Handle handle) override { return note("releasedir", node, handle); }
  Result<wire::StatFs> statfs(NodeId node) override { return note("statfs", node); }
  Result<void> access(NodeId node, std::uint32_t mask, const Caller& c) override {
    return note("access", node, mask, c.pid);
  }
  Result<void> fallocate(NodeId node, Handle handle, std::uint32_t mode, std::uint64_t offset,
                         std::uint64_t length) override {
    return note("fallocate", node, handle, mode, offset, length);
  }
  void reset() override { calls.push_back("reset"); }

 private:
  template <class... Args>
  Unexpected<int> note(const char* op, const Args&... args) {
    std::ostringstream s;
    s << op;
    ((s << ' ' << args), ...);
    calls.push_back(s.str());
    if (behaviour) behaviour();
    return fail(error);
  }
};

// A request for `op` with every member it uses set to something valid.
wire::Request valid_request(Op op) {
  wire::Request r;
  r.unique = 77;
  r.mount_id = 3;
  r.op = op;
  r.node = wire::kRootNode;
  r.uid = 1000;
  r.gid = 100;
  r.pid = 4242;
  r.name = "name";
  r.target = "other";
  r.new_parent = wire::kRootNode;
  r.handle = 5;
  r.size = 4096;
  r.mode = 0644;
  r.data = Bytes(3, std::byte{'x'});
  r.set = wire::kSetMode;
  return r;
}

std::vector<Op> all_ops() {
  std::vector<Op> ops;
  for (std::uint8_t i = 1; i <= wire::kMaxOp; ++i) ops.push_back(static_cast<Op>(i));
  return ops;
}

template <class T>
T body_of(Op op, const wire::Reply& reply, T wire::ReplyBody::*member) {
  REQUIRE(reply.error == 0);
  auto body = wire::decode_reply_body(op, reply.body);
  INFO(wire::to_string(op) << ": " << (body ? "" : body.error().reason));
  REQUIRE(body);
  return (*body).*member;
}

}  // namespace

TEST_CASE("dispatch: a read-only mount refuses every op that modifies with EROFS") {
  const std::set<Op> modifying{Op::kSetattr, Op::kMknod, Op::kMkdir,  Op::kUnlink, Op::kRmdir,    Op::kSymlink,
                               Op::kRename,  Op::kLink,  Op::kCreate, Op::kWrite,  Op::kFallocate};
  for (Op op : all_ops()) {
    INFO(wire::to_string(op));
    FakeProvider fake;
    wire::Reply reply = dispatch(fake, valid_request(op), true);
    CHECK(reply.unique == 77);
    if (modifying.count(op) != 0) {
      CHECK(reply.error == EROFS);
      CHECK(fake.calls.empty());
    } else {
      CHECK(reply.error == ENOSYS);  // it reached the provider
      CHECK(fake.calls.size() == 1);
    }
    // The same request on a writable mount reaches the provider.
    FakeProvider writable;
    CHECK(dispatch(writable, valid_request(op), false).error == ENOSYS);
    CHECK(writable.calls.size() == 1);
  }
  for (std::uint32_t flags : {std::uint32_t{O_WRONLY}, std::uint32_t{O_RDWR}, std::uint32_t{O_RDONLY | O_TRUNC},
                              std::uint32_t{O_RDONLY | O_APPEND}, std::uint32_t{O_RDONLY | O_CREAT}}) {
    FakeProvider fake;
    wire::Request r = valid_request(Op::kOpen);
    r.flags = flags;
    CHECK(dispatch(fake, r, true).error == EROFS);
    CHECK(fake.calls.empty());
  }
  FakeProvider fake;
  wire::Request r = valid_request(Op::kOpen);
  r.flags = O_RDONLY;
  CHECK(dispatch(fake, r, true).error == ENOSYS);
  r = valid_request(Op::kAccess);
  r.flags = W_OK;
  CHECK(dispatch(fake, r, true).error == EROFS);
  r.flags = R_OK | X_OK;
  CHECK(dispatch(fake, r, true).error == ENOSYS);
  CHECK(fake.calls.size() == 2);
}

TEST_CASE("dispatch: a read-only memory mount stays as it was, and still reads") {
  auto made = MemoryProvider::create({{"f", "contents", 0644}}, {});
  REQUIRE(made);
  MemoryProvider& p = **made;
  NodeId f = p.lookup(wire::kRootNode, "f")->node;
  for (Op op : all_ops()) {
    wire::Request r = valid_request(op);
    r.name = "f";
    r.target = "g";
    r.node = op == Op::kLink ? f : wire::kRootNode;
    r.set = wire::kSetSize;
    r.flags = O_RDWR | O_TRUNC;
    (void)dispatch(p, r, true);
  }
  CHECK(p.getattr(f, wire::kNoHandle)->size == 8);
  CHECK(p.lookup(wire::kRootNode, "g").error() == ENOENT);
  wire::Request open = valid_request(Op::kOpen);
  open.node = f;
  open.flags = O_RDONLY;
  wire::OpenFile opened = body_of(Op::kOpen, dispatch(p, open, true), &wire::ReplyBody::open);
  wire::Request read = valid_request(Op::kRead);
  read.node = f;
  read.handle = opened.handle;
  CHECK(body_of(Op::kRead, dispatch(p, read, true), &wire::ReplyBody::data) ==
        Bytes{std::byte{'c'}, std::byte{'o'}, std::byte{'n'}, std::byte{'t'}, std::byte{'e'}, std::byte{'n'},
              std::byte{'t'}, std::byte{'s'}});
}

TEST_CASE("dispatch: names, targets and sizes are checked again before any provider sees them") {
  const std::vector<Op> named{Op::kLookup,  Op::kMknod,  Op::kMkdir, Op::kUnlink, Op::kRmdir,
                              Op::kSymlink, Op::kRename, Op::kLink,  Op::kCreate};
  for (Op op : named) {
    for (std::string bad : {std::string(""), std::string("."), std::string(".."), std::string("a/b"), std::string("/"),
                            std::string("a\0b", 3)}) {
      INFO(wire::to_string(op) << " name " << bad);
      FakeProvider fake;
      wire::Request r = valid_request(op);
      r.name = bad;
      CHECK(dispatch(fake, r, false).error == EINVAL);
      CHECK(fake.calls.empty());
    }
    FakeProvider fake;
    wire::Request r = valid_request(op);
    r.name = std::string(256, 'n');
    CHECK(dispatch(fake, r, false).error == ENAMETOOLONG);
    r.name = std::string(255, 'n');
    CHECK(dispatch(fake, r, false).error == ENOSYS);
    CHECK(fake.calls.size() == 1);
  }
  FakeProvider fake;
  wire::Request r = valid_request(Op::kRename);
  r.target = "..";
  CHECK(dispatch(fake, r, false).error == EINVAL);
  r = valid_request(Op::kSymlink);
  r.target = "";
  CHECK(dispatch(fake, r, false).error == EINVAL);
  r.target = std::string("a\0b", 3);
  CHECK(dispatch(fake, r, false).error == EINVAL);
  r.target = std::string(4096, 't');
  CHECK(dispatch(fake, r, false).error == ENAMETOOLONG);
  r = valid_request(Op::kRead);
  r.size = wire::kMaxData + 1;
  CHECK(dispatch(fake, r, false).error == EINVAL);
  r = valid_request(Op::kWrite);
  r.data.resize(wire::kMaxData + 1);
  CHECK(dispatch(fake, r, false).error == EINVAL);
  CHECK(fake.calls.empty());
  // Targets may be anything else: the provider stores them as text.
  r = valid_request(Op::kSymlink);
  r.target = "../../../etc/passwd";
  CHECK(dispatch(fake, r, false).error == ENOSYS);
  CHECK(fake.calls == std::vector<std::string>{"symlink 1 name ../../../etc/passwd 1000"});
}

TEST_CASE("dispatch: each op's members reach the provider where they belong") {
  FakeProvider fake;
  auto last = [&](wire::Request r) {
    (void)dispatch(fake, r, false);
    REQUIRE_FALSE(fake.calls.empty());
    return fake.calls.back();
  };
  wire::Request r = valid_request(Op::kRename);
  r.node = 10;
  r.new_parent = 11;
  r.flags = RENAME_NOREPLACE;
  CHECK(last(r) == "rename 10 name 11 other 1");
  r = valid_request(Op::kLink);
  r.node = 12;
  r.new_parent = 13;
  CHECK(last(r) == "link 12 13 name");
  r = valid_request(Op::kFsync);
  r.flags = 1;
  CHECK(last(r) == "fsync 1 5 1");
  r.flags = 0;
  CHECK(last(r) == "fsync 1 5 0");
  r = valid_request(Op::kAccess);
  r.flags = R_OK;
  CHECK(last(r) == "access 1 4 4242");
  r = valid_request(Op::kSetattr);
  CHECK(last(r) == "setattr 1 1 1000 100 4242");
  r = valid_request(Op::kMknod);
  r.mode = 010644;
  r.rdev = 9;
  CHECK(last(r) == "mknod 1 name 4516 9 1000");  // 010644
  r = valid_request(Op::kCreate);
  r.flags = O_WRONLY;
  CHECK(last(r) == "create 1 name 420 1 100");
  r = valid_request(Op::kRead);
  r.offset = 99;
  CHECK(last(r) == "read 1 5 99 4096");
  r = valid_request(Op::kWrite);
  r.offset = 7;
  CHECK(last(r) == "write 1 5 7 3");
  r = valid_request(Op::kReaddir);
  r.offset = 3;
  r.size = 100;
  CHECK(last(r) == "readdir 1 5 3 100");
  r = valid_request(Op::kFallocate);
  r.mode = 1;
  r.offset = 2;
  r.length = 3;
  CHECK(last(r) == "fallocate 1 5 1 2 3");

  wire::Forget forget;
  forget.items = {{5, 1}, {6, 100}};
  vfs::forget(fake, forget);
  CHECK(fake.forgotten == std::vector<std::pair<NodeId, std::uint64_t>>{{5, 1}, {6, 100}});
}

TEST_CASE("dispatch: a provider's exceptions and bogus errors never escape") {
  FakeProvider fake;
  fake.behaviour = [] { throw std::bad_alloc(); };
  CHECK(dispatch(fake, valid_request(Op::kLookup), false).error == ENOMEM);
  fake.behaviour = [] { throw std::runtime_error("boom"); };
  CHECK(dispatch(fake, valid_request(Op::kLookup), false).error == EIO);
  fake.behaviour = nullptr;
  fake.error = 0;
  wire::Reply zero = dispatch(fake, valid_request(Op::kLookup), false);
  CHECK(zero.error == EIO);
  CHECK(zero.body.empty());
  fake.error = -3;
  CHECK(dispatch(fake, valid_request(Op::kUnlink), false).error == EIO);
  wire::Request unknown = valid_request(Op::kLookup);
  unknown.op = static_cast<Op>(200);
  CHECK(dispatch(fake, unknown, false).error == ENOSYS);
}

TEST_CASE("dispatch: answers carry their op's body and decode with the guest's decoder") {
  auto made = MemoryProvider::create({{"dir/a", "A", 0644}, {"link", "dir/a", S_IFLNK | 0777}}, {});
  REQUIRE(made);
  MemoryProvider& p = **made;
  wire::Request r = valid_request(Op::kCreate);
  r.name = "f";
  r.flags = O_RDWR;
  r.mode = S_IFREG | 0600;
  wire::Reply reply = dispatch(p, r, false);
  REQUIRE(reply.error == 0);
  auto created = wire::decode_reply_body(Op::kCreate, reply.body);
  REQUIRE(created);
  NodeId f = created->entry.node;
  Handle h = created->open.handle;
  CHECK(created->entry.attr.mode == (S_IFREG | 0600));

  r = valid_request(Op::kWrite);
  r.node = f;
  r.handle = h;
  r.data = Bytes(5000, std::byte{'w'});
  CHECK(body_of(Op::kWrite, dispatch(p, r, false), &wire::ReplyBody::written) == 5000);
  r = valid_request(Op::kRead);
  r.node = f;
  r.handle = h;
  r.offset = 4990;
  CHECK(body_of(Op::kRead, dispatch(p, r, false), &wire::ReplyBody::data) == Bytes(10, std::byte{'w'}));
  r = valid_request(Op::kGetattr);
  r.node = f;
  r.handle = wire::kNoHandle;
  CHECK(body_of(Op::kGetattr, dispatch(p, r, false), &wire::ReplyBody::attr).size == 5000);
  r = valid_request(Op::kLookup);
  r.name = "link";
  NodeId link = body_of(Op::kLookup, dispatch(p, r, false), &wire::ReplyBody::entry).node;
  r = valid_request(Op::kReadlink);
  r.node = link;
  CHECK(body_of(Op::kReadlink, dispatch(p, r, false), &wire::ReplyBody::target) == "dir/a");
  r = valid_request(Op::kStatfs);
  CHECK(body_of(Op::kStatfs, dispatch(p, r, false), &wire::ReplyBody::statfs).name_max == 255);
  r = valid_request(Op::kOpendir);
  Handle d = body_of(Op::kOpendir, dispatch(p, r, false), &wire::ReplyBody::open).handle;
  r = valid_request(Op::kReaddir);
  r.handle = d;
  auto entries = body_of(Op::kReaddir, dispatch(p, r, false), &wire::ReplyBody::entries);
  std::set<std::string> names;
  for (const auto& e : entries) names.insert(e.name);
  CHECK(names == std::set<std::string>{"dir", "link", "f"});
  for (Op op : {Op::kRelease, Op::kReleasedir}) {
    r = valid_request(op);
    r.node = op == Op::kRelease ? f : wire::kRootNode;
    r.handle = op == Op::kRelease ? h : d;
    wire::Reply done = dispatch(p, r, false);
    CHECK(done.error == 0);
    CHECK(wire::decode_reply_body(op, done.body));
    // Twice is EBADF, with an empty body and the request's unique.
    wire::Reply again = dispatch(p, r, false);
    CHECK(again.error == EBADF);
    CHECK(again.body.empty());
    CHECK(again.unique == 77);
  }
}
