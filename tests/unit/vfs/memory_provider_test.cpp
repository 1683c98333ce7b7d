// The in-memory provider: its initial tree, POSIX behaviour a guest's tools
// rely on, and its budgets.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <cstdio>
#include <functional>
#include <set>
#include <string>

#include "daemon/vfs/memory_provider.hpp"

using namespace sandboxd;
using namespace sandboxd::vfs;

namespace {

const Caller kCaller{1000, 100, 7};
constexpr NodeId kRoot = wire::kRootNode;

Bytes bytes(std::string_view s) {
  auto b = as_bytes(s);
  return Bytes(b.begin(), b.end());
}
std::string text(const Bytes& b) { return std::string(as_chars(b)); }

template <class R>
int error_of(const R& result) {
  REQUIRE_FALSE(result);
  return result.error();
}

// A clock the test moves by hand.
struct FakeClock {
  std::int64_t sec = 1'000;
  std::function<wire::Timespec()> fn() {
    return [this] { return wire::Timespec{sec, 0}; };
  }
};

std::unique_ptr<MemoryProvider> make(const std::vector<MemoryFile>& files, MemoryProvider::Options options = {}) {
  auto made = MemoryProvider::create(files, std::move(options));
  REQUIRE(made);
  return std::move(made).value();
}

NodeId look(MemoryProvider& p, NodeId parent, std::string_view name) {
  auto e = p.lookup(parent, name);
  REQUIRE(e);
  return e->node;
}

std::string contents(MemoryProvider& p, NodeId node) {
  auto h = p.open(node, O_RDONLY);
  REQUIRE(h);
  auto data = p.read(node, h->handle, 0, wire::kMaxData);
  REQUIRE(data);
  REQUIRE(p.release(node, h->handle));
  return text(*data);
}

std::set<std::string> names(MemoryProvider& p, NodeId dir) {
  auto h = p.opendir(dir);
  REQUIRE(h);
  std::set<std::string> out;
  std::uint64_t offset = 0;
  for (;;) {
    auto page = p.readdir(dir, h->handle, offset, 4096);
    REQUIRE(page);
    if (page->empty()) break;
    for (const auto& e : *page) out.insert(e.name);
    offset = page->back().next_offset;
  }
  REQUIRE(p.releasedir(dir, h->handle));
  return out;
}

wire::Request set_request(std::uint32_t set) {
  wire::Request r;
  r.op = wire::Op::kSetattr;
  r.set = set;
  return r;
}

}  // namespace

TEST_CASE("memory provider: the initial tree, with directories made on the way") {
  MemoryProvider::Options options;
  options.uid = 5;
  options.gid = 6;
  auto p = make({{"etc/app/config.toml", "key = 1\n", 0600},
                 {"etc/app", "", S_IFDIR | 0750},
                 {"bin/tool", std::string("\0\x01\xff", 3), 0755},
                 {"link", "etc/app/config.toml", S_IFLNK | 0777},
                 {"empty", "", S_IFDIR | 0700}},
                options);
  NodeId etc = look(*p, kRoot, "etc");
  auto etc_attr = p->getattr(etc, wire::kNoHandle);
  REQUIRE(etc_attr);
  CHECK(etc_attr->mode == (S_IFDIR | 0755));
  CHECK(etc_attr->uid == 5);
  NodeId app = look(*p, etc, "app");
  CHECK(p->getattr(app, wire::kNoHandle)->mode == (S_IFDIR | 0750));
  NodeId config = look(*p, app, "config.toml");
  CHECK(p->getattr(config, wire::kNoHandle)->mode == (S_IFREG | 0600));
  CHECK(contents(*p, config) == "key = 1\n");
  CHECK(contents(*p, look(*p, look(*p, kRoot, "bin"), "tool")) == std::string("\0\x01\xff", 3));
  NodeId link = look(*p, kRoot, "link");
  CHECK(*p->readlink(link) == "etc/app/config.toml");
  CHECK(names(*p, kRoot) == std::set<std::string>{"etc", "bin", "link", "empty"});
  CHECK(p->getattr(kRoot, wire::kNoHandle)->nlink == 5);  // 2, and one for each of etc, bin, empty
  CHECK(p->used_bytes() == 8 + 3 + 19);
}

TEST_CASE("memory provider: initial trees that are not clean relative paths are refused with a reason") {
  auto refused = [](std::vector<MemoryFile> files, MemoryProvider::Options options = {}) {
    auto made = MemoryProvider::create(files, std::move(options));
    REQUIRE_FALSE(made);
    INFO(made.error());
    CHECK(made.error().find(files.back().path) != std::string::npos);
    return made.error();
  };
  refused({{"/etc/passwd", "x", 0644}});
  refused({{"", "x", 0644}});
  refused({{"a/../b", "x", 0644}});
  refused({{"a/./b", "x", 0644}});
  refused({{"a//b", "x", 0644}});
  refused({{"a/", "x", 0644}});
  refused({{std::string("a\0b", 3), "x", 0644}});
  refused({{std::string(256, 'n'), "x", 0644}});
  refused({{"a", "x", 0644}, {"a", "y", 0644}});
  refused({{"a/b", "x", 0644}, {"a", "", S_IFDIR | 0755}, {"a", "", S_IFDIR | 0755}});
  refused({{"a", "x", 0644}, {"a/b", "y", 0644}});
  refused({{"dev", "", S_IFCHR | 0644}});
  refused({{"d", "contents", S_IFDIR | 0755}});
  refused({{"l", "", S_IFLNK | 0777}});
  MemoryProvider::Options small;
  small.capacity_bytes = 10;
  CHECK(refused({{"a", "12345", 0644}, {"b", "123456", 0644}}, small).find("byte budget") != std::string::npos);
  MemoryProvider::Options few;
  few.max_nodes = 3;
  CHECK(refused({{"a/b/c", "", 0644}}, few).find("node budget") != std::string::npos);
}

TEST_CASE("memory provider: create, write, read; times move like a real file system's") {
  FakeClock clock;
  MemoryProvider::Options options;
  options.clock = clock.fn();
  auto p = make({}, options);
  clock.sec = 2'000;
  auto made = p->create(kRoot, "f", S_IFREG | 0644, O_RDWR, kCaller);
  REQUIRE(made);
  NodeId f = made->entry.node;
  Handle h = made->open.handle;
  CHECK(made->entry.attr.ino == f);
  CHECK(made->entry.attr.uid == 1000);
  CHECK(made->entry.attr.gid == 100);
  CHECK(made->entry.entry_timeout_ms == 60000);
  CHECK(p->getattr(kRoot, wire::kNoHandle)->mtime.sec == 2'000);
  clock.sec = 3'000;
  CHECK(*p->write(f, h, 0, bytes("hello world")) == 11);
  CHECK(*p->write(f, h, 15, bytes("!")) == 1);
  CHECK(text(*p->read(f, h, 0, 100)) == std::string("hello world") + std::string(4, '\0') + "!");
  CHECK(text(*p->read(f, h, 6, 5)) == "world");
  CHECK(p->read(f, h, 100, 5)->empty());
  auto attr = p->getattr(f, h);
  CHECK(attr->size == 16);
  CHECK(attr->mtime.sec == 3'000);
  CHECK(attr->ctime.sec == 3'000);
  CHECK(attr->atime.sec == 2'000);
  CHECK(p->getattr(kRoot, wire::kNoHandle)->mtime.sec == 2'000);  // contents are not entries
  CHECK(p->flush(f, h));
  CHECK(p->fsync(f, h, true));
  REQUIRE(p->release(f, h));

  auto appending = p->open(f, O_WRONLY | O_APPEND);
  REQUIRE(appending);
  CHECK(*p->write(f, appending->handle, 0, bytes("?")) == 1);
  CHECK(error_of(p->read(f, appending->handle, 0, 10)) == EBADF);
  auto reading = p->open(f, O_RDONLY);
  CHECK(error_of(p->write(f, reading->handle, 0, bytes("x"))) == EBADF);
  CHECK(text(*p->read(f, reading->handle, 16, 10)) == "?");
  auto truncating = p->open(f, O_WRONLY | O_TRUNC);
  REQUIRE(truncating);
  CHECK(p->getattr(f, wire::kNoHandle)->size == 0);
  CHECK(p->used_bytes() == 0);

  CHECK(error_of(p->create(kRoot, "f", 0644, O_RDWR | O_EXCL, kCaller)) == EEXIST);
  auto reopened = p->create(kRoot, "f", 0644, O_RDWR, kCaller);
  REQUIRE(reopened);
  CHECK(reopened->entry.node == f);
  auto d = p->mkdir(kRoot, "d", 0755, kCaller);
  REQUIRE(d);
  CHECK(error_of(p->create(kRoot, "d", 0644, O_RDWR, kCaller)) == EISDIR);
  CHECK(error_of(p->open(d->node, O_RDONLY)) == EISDIR);
  CHECK(error_of(p->open(f, O_PATH)) == EINVAL);
  CHECK(error_of(p->open(f, O_ACCMODE)) == EINVAL);
}

TEST_CASE("memory provider: setattr strips set-id bits and stores owners, sizes and times") {
  FakeClock clock;
  MemoryProvider::Options options;
  options.clock = clock.fn();
  auto p = make({{"f", "0123456789", 0644}}, options);
  NodeId f = look(*p, kRoot, "f");
  clock.sec = 5'000;
  wire::Request r = set_request(wire::kSetMode | wire::kSetUid | wire::kSetGid);
  r.mode = S_IFREG | 06755;
  r.uid_to = 33;
  r.gid_to = 44;
  auto attr = p->setattr(f, r, kCaller);
  REQUIRE(attr);
  CHECK(attr->mode == (S_IFREG | 0755));
  CHECK(attr->uid == 33);
  CHECK(attr->gid == 44);
  CHECK(attr->ctime.sec == 5'000);
  CHECK(attr->mtime.sec == 1'000);
  r = set_request(wire::kSetSize);
  r.size_to = 4;
  CHECK(p->setattr(f, r, kCaller)->size == 4);
  CHECK(contents(*p, f) == "0123");
  r.size_to = 8;
  CHECK(contents(*p, f) == "0123");
  CHECK(p->setattr(f, r, kCaller)->size == 8);
  CHECK(contents(*p, f) == std::string("0123") + std::string(4, '\0'));
  r = set_request(wire::kSetAtime | wire::kSetMtimeNow);
  r.atime_to = {77, 999'999'999};
  clock.sec = 6'000;
  attr = p->setattr(f, r, kCaller);
  CHECK(attr->atime == wire::Timespec{77, 999'999'999});
  CHECK(attr->mtime.sec == 6'000);
  // mkdir, mknod and create strip the bits too; mknod makes no devices.
  CHECK(p->mkdir(kRoot, "d", 02775, kCaller)->attr.mode == (S_IFDIR | 0775));
  CHECK(p->create(kRoot, "c", S_IFREG | 04711, O_RDWR, kCaller)->entry.attr.mode == (S_IFREG | 0711));
  CHECK(p->mknod(kRoot, "p", S_IFIFO | 06644, 0, kCaller)->attr.mode == (S_IFIFO | 0644));
  CHECK(error_of(p->open(look(*p, kRoot, "p"), O_RDONLY)) == ENXIO);
  CHECK(error_of(p->mknod(kRoot, "dev", S_IFCHR | 0666, 0x0103, kCaller)) == EPERM);
  CHECK(error_of(p->mknod(kRoot, "blk", S_IFBLK | 0666, 0x0801, kCaller)) == EPERM);
  CHECK(error_of(p->lookup(kRoot, "dev")) == ENOENT);
  r = set_request(wire::kSetSize);
  CHECK(error_of(p->setattr(look(*p, kRoot, "d"), r, kCaller)) == EISDIR);
}

TEST_CASE("memory provider: hard links count, and an unlinked open file lives until released and forgotten") {
  auto p = make({{"f", "data", 0644}});
  NodeId f = look(*p, kRoot, "f");
  auto linked = p->link(f, kRoot, "g");
  REQUIRE(linked);
  CHECK(linked->node == f);
  CHECK(linked->attr.nlink == 2);
  CHECK(error_of(p->link(f, kRoot, "g")) == EEXIST);
  auto d = p->mkdir(kRoot, "d", 0755, kCaller);
  CHECK(error_of(p->link(d->node, kRoot, "dlink")) == EPERM);
  auto h = p->open(f, O_RDWR);
  REQUIRE(h);
  REQUIRE(p->unlink(kRoot, "f"));
  REQUIRE(p->unlink(kRoot, "g"));
  CHECK(error_of(p->lookup(kRoot, "f")) == ENOENT);
  CHECK(p->getattr(f, wire::kNoHandle)->nlink == 0);
  CHECK(text(*p->read(f, h->handle, 0, 100)) == "data");
  CHECK(*p->write(f, h->handle, 4, bytes("!")) == 1);
  CHECK(text(*p->read(f, h->handle, 0, 100)) == "data!");
  CHECK(error_of(p->link(f, kRoot, "back")) == ENOENT);
  std::size_t nodes = p->node_count();
  REQUIRE(p->release(f, h->handle));
  CHECK(p->node_count() == nodes);  // the kernel still holds lookups (one, plus one from link)
  CHECK(p->used_bytes() == 5);
  p->forget(f, 2);
  CHECK(p->node_count() == nodes - 1);
  CHECK(p->used_bytes() == 0);
  CHECK(error_of(p->getattr(f, wire::kNoHandle)) == ENOENT);
  // Forgetting more than was looked up, or a node never seen, is harmless.
  p->forget(f, 100);
  p->forget(12345, 1);
  p->forget(kRoot, 1000);
  CHECK(p->getattr(kRoot, wire::kNoHandle));
}

TEST_CASE("memory provider: rename with its flags and the refusals of rename(2)") {
  FakeClock clock;
  MemoryProvider::Options options;
  options.clock = clock.fn();
  auto p =
      make({{"a", "A", 0644}, {"b", "B", 0644}, {"d/x", "X", 0644}, {"e/y", "Y", 0644}, {"empty", "", S_IFDIR | 0755}},
           options);
  NodeId a = look(*p, kRoot, "a");
  NodeId b = look(*p, kRoot, "b");
  NodeId d = look(*p, kRoot, "d");
  NodeId e = look(*p, kRoot, "e");
  NodeId empty = look(*p, kRoot, "empty");
  CHECK(error_of(p->rename(kRoot, "a", kRoot, "b", RENAME_NOREPLACE)) == EEXIST);
  CHECK(error_of(p->rename(kRoot, "a", kRoot, "zz", RENAME_EXCHANGE)) == ENOENT);
  CHECK(error_of(p->rename(kRoot, "a", kRoot, "b", RENAME_EXCHANGE | RENAME_NOREPLACE)) == EINVAL);
  CHECK(error_of(p->rename(kRoot, "a", kRoot, "b", 4)) == EINVAL);  // RENAME_WHITEOUT
  CHECK(error_of(p->rename(kRoot, "nope", kRoot, "b", 0)) == ENOENT);
  CHECK(error_of(p->rename(kRoot, "d", d, "inside", 0)) == EINVAL);
  CHECK(error_of(p->rename(kRoot, "d", kRoot, "e", 0)) == ENOTEMPTY);
  CHECK(error_of(p->rename(kRoot, "d", kRoot, "a", 0)) == ENOTDIR);
  CHECK(error_of(p->rename(kRoot, "a", kRoot, "empty", 0)) == EISDIR);
  CHECK(error_of(p->rename(kRoot, "a", a, "x", 0)) == ENOTDIR);

  clock.sec = 2'000;
  REQUIRE(p->rename(kRoot, "a", kRoot, "b", RENAME_EXCHANGE));
  CHECK(look(*p, kRoot, "b") == a);
  CHECK(contents(*p, look(*p, kRoot, "a")) == "B");
  CHECK(p->getattr(a, wire::kNoHandle)->ctime.sec == 2'000);
  CHECK(p->getattr(kRoot, wire::kNoHandle)->mtime.sec == 2'000);
  // A directory moves into another: link counts of both parents follow.
  CHECK(p->getattr(kRoot, wire::kNoHandle)->nlink == 5);
  REQUIRE(p->rename(kRoot, "d", e, "d", 0));
  CHECK(p->getattr(kRoot, wire::kNoHandle)->nlink == 4);
  CHECK(p->getattr(e, wire::kNoHandle)->nlink == 3);
  CHECK(contents(*p, look(*p, look(*p, e, "d"), "x")) == "X");
  // d's parent is e now: e may not move into it.
  CHECK(error_of(p->rename(kRoot, "e", d, "e", 0)) == EINVAL);
  // A directory over an empty one replaces it; the old one is removed.
  REQUIRE(p->rename(e, "d", kRoot, "empty", 0));
  CHECK(look(*p, kRoot, "empty") == d);
  CHECK(p->getattr(empty, wire::kNoHandle)->nlink == 0);
  CHECK(error_of(p->lookup(empty, "x")) == ENOENT);
  CHECK(p->getattr(kRoot, wire::kNoHandle)->nlink == 4);
  CHECK(p->getattr(e, wire::kNoHandle)->nlink == 2);
  // Exchange of a directory and a file across parents.
  REQUIRE(p->rename(kRoot, "empty", e, "y", RENAME_EXCHANGE));
  CHECK(look(*p, e, "y") == d);
  CHECK(contents(*p, look(*p, kRoot, "empty")) == "Y");
  CHECK(p->getattr(kRoot, wire::kNoHandle)->nlink == 3);
  CHECK(p->getattr(e, wire::kNoHandle)->nlink == 3);
  // A file over a file: the old one is gone once forgotten.
  REQUIRE(p->rename(kRoot, "a", kRoot, "b", 0));
  CHECK(p->getattr(a, wire::kNoHandle)->nlink == 0);
  CHECK(contents(*p, look(*p, kRoot, "b")) == "B");
  // Two names of one file: nothing happens.
  REQUIRE(p->link(b, kRoot, "b2"));
  REQUIRE(p->rename(kRoot, "b", kRoot, "b2", 0));
  CHECK(names(*p, kRoot).count("b") == 1);
  CHECK(names(*p, kRoot).count("b2") == 1);
}

TEST_CASE("memory provider: mkdir, rmdir and unlink follow POSIX") {
  auto p = make({{"d/f", "", 0644}});
  NodeId d = look(*p, kRoot, "d");
  CHECK(error_of(p->mkdir(kRoot, "d", 0755, kCaller)) == EEXIST);
  CHECK(error_of(p->rmdir(kRoot, "d")) == ENOTEMPTY);
  CHECK(error_of(p->unlink(kRoot, "d")) == EISDIR);
  CHECK(error_of(p->rmdir(d, "f")) == ENOTDIR);
  CHECK(error_of(p->mkdir(look(*p, d, "f"), "x", 0755, kCaller)) == ENOTDIR);
  CHECK(error_of(p->lookup(look(*p, d, "f"), "x")) == ENOTDIR);
  REQUIRE(p->unlink(d, "f"));
  auto h = p->opendir(d);
  REQUIRE(h);
  REQUIRE(p->rmdir(kRoot, "d"));
  // A removed directory stays openable but takes nothing new and lists nothing.
  CHECK(p->readdir(d, h->handle, 0, 4096)->empty());
  CHECK(error_of(p->create(d, "g", 0644, O_RDWR, kCaller)) == ENOENT);
  CHECK(error_of(p->mkdir(d, "g", 0755, kCaller)) == ENOENT);
  REQUIRE(p->releasedir(d, h->handle));
  auto s = p->symlink(kRoot, "s", "/anywhere/at/all", kCaller);
  REQUIRE(s);
  CHECK(s->attr.mode == (S_IFLNK | 0777));
  CHECK(s->attr.size == 16);
  CHECK(error_of(p->symlink(kRoot, "t", "", kCaller)) == EINVAL);
  CHECK(error_of(p->symlink(kRoot, "t", std::string("a\0b", 3), kCaller)) == EINVAL);
  CHECK(error_of(p->symlink(kRoot, "t", std::string(4096, 'x'), kCaller)) == ENAMETOOLONG);
  CHECK(error_of(p->readlink(kRoot)) == EINVAL);
  CHECK(error_of(p->open(s->node, O_RDONLY)) == ELOOP);
  for (std::string bad : {std::string("."), std::string(".."), std::string("a/b"), std::string("")}) {
    CHECK(error_of(p->lookup(kRoot, bad)) == EINVAL);
    CHECK(error_of(p->mkdir(kRoot, bad, 0755, kCaller)) == EINVAL);
    CHECK(error_of(p->rename(kRoot, "s", kRoot, bad, 0)) == EINVAL);
  }
}

TEST_CASE("memory provider: readdir offsets stay true while the directory changes") {
  std::vector<MemoryFile> files;
  for (int i = 0; i < 40; ++i) files.push_back({"f" + std::to_string(i), "", 0644});
  auto p = make(files);
  auto h = p->opendir(kRoot);
  REQUIRE(h);
  std::multiset<std::string> seen;
  std::uint64_t offset = 0;
  int round = 0;
  for (;;) {
    auto page = p->readdir(kRoot, h->handle, offset, 100);  // three entries a page (32 bytes each)
    REQUIRE(page);
    if (page->empty()) break;
    CHECK(page->size() <= 3);
    for (const auto& e : *page) seen.insert(e.name);
    offset = page->back().next_offset;
    // Between pages, entries already listed go away and (for a while) new
    // ones arrive.
    REQUIRE(p->unlink(kRoot, page->back().name));
    if (++round <= 10) REQUIRE(p->mknod(kRoot, "new" + std::to_string(round), S_IFREG | 0644, 0, kCaller));
    REQUIRE(round < 100);
  }
  for (int i = 0; i < 40; ++i) CHECK(seen.count("f" + std::to_string(i)) == 1);
  for (const auto& name : seen) CHECK(seen.count(name) == 1);
  CHECK(error_of(p->readdir(kRoot, h->handle, 0, 8)) == EINVAL);
  CHECK(error_of(p->readdir(kRoot, 999, 0, 4096)) == EBADF);
  CHECK(error_of(p->readdir(look(*p, kRoot, "f1"), h->handle, 0, 4096)) == EBADF);
  REQUIRE(p->releasedir(kRoot, h->handle));
  CHECK(error_of(p->releasedir(kRoot, h->handle)) == EBADF);
}

TEST_CASE("memory provider: the byte and node budgets answer ENOSPC and show in statfs") {
  MemoryProvider::Options options;
  options.capacity_bytes = 10 * 4096;
  options.max_nodes = 5;
  auto p = make({{"f", std::string(4096, 'a'), 0644}}, options);
  auto fs = p->statfs(kRoot);
  CHECK(fs->blocks == 10);
  CHECK(fs->blocks_free == 9);
  CHECK(fs->files == 5);
  CHECK(fs->files_free == 3);
  NodeId f = look(*p, kRoot, "f");
  auto h = p->open(f, O_RDWR);
  REQUIRE(h);
  // A write that only partly fits is short; the next one is ENOSPC.
  Bytes big(10 * 4096, std::byte{'b'});
  CHECK(*p->write(f, h->handle, 4096, big) == 9 * 4096);
  CHECK(p->used_bytes() == 10 * 4096);
  CHECK(error_of(p->write(f, h->handle, 10 * 4096, bytes("x"))) == ENOSPC);
  CHECK(*p->write(f, h->handle, 0, bytes("overwrite fits")) == 14);
  CHECK(error_of(p->write(f, h->handle, 1ull << 40, bytes("x"))) == ENOSPC);
  wire::Request grow = set_request(wire::kSetSize);
  grow.size_to = 11 * 4096;
  CHECK(error_of(p->setattr(f, grow, kCaller)) == ENOSPC);
  CHECK(error_of(p->fallocate(f, h->handle, 0, 0, 11 * 4096)) == ENOSPC);
  CHECK(error_of(p->symlink(kRoot, "l", "target", kCaller)) == ENOSPC);
  CHECK(p->statfs(kRoot)->blocks_free == 0);
  grow.size_to = 0;
  REQUIRE(p->setattr(f, grow, kCaller));
  CHECK(p->used_bytes() == 0);
  CHECK(p->fallocate(f, h->handle, 0, 0, 100));
  CHECK(p->getattr(f, wire::kNoHandle)->size == 100);
  CHECK(p->fallocate(f, h->handle, FALLOC_FL_KEEP_SIZE, 0, 1000));
  CHECK(p->getattr(f, wire::kNoHandle)->size == 100);
  CHECK(error_of(p->fallocate(f, h->handle, FALLOC_FL_COLLAPSE_RANGE, 0, 10)) == EOPNOTSUPP);
  // Nodes: root, f, and three more.
  REQUIRE(p->mkdir(kRoot, "a", 0755, kCaller));
  REQUIRE(p->mknod(kRoot, "b", S_IFREG | 0644, 0, kCaller));
  REQUIRE(p->symlink(kRoot, "c", "x", kCaller));
  CHECK(error_of(p->mkdir(kRoot, "d", 0755, kCaller)) == ENOSPC);
  CHECK(error_of(p->create(kRoot, "e", 0644, O_RDWR, kCaller)) == ENOSPC);
  CHECK(p->statfs(kRoot)->files_free == 0);
}

TEST_CASE("memory provider: unknown nodes and handles, and the handle cap") {
  MemoryProvider::Options options;
  options.max_handles = 2;
  auto p = make({{"f", "x", 0644}}, options);
  NodeId f = look(*p, kRoot, "f");
  for (NodeId bogus : {NodeId{0}, NodeId{999}, ~NodeId{0}}) {
    CHECK(error_of(p->lookup(bogus, "f")) == ENOENT);
    CHECK(error_of(p->getattr(bogus, wire::kNoHandle)) == ENOENT);
    CHECK(error_of(p->setattr(bogus, set_request(wire::kSetMode), kCaller)) == ENOENT);
    CHECK(error_of(p->open(bogus, O_RDONLY)) == ENOENT);
    CHECK(error_of(p->opendir(bogus)) == ENOENT);
    CHECK(error_of(p->access(bogus, F_OK, kCaller)) == ENOENT);
    CHECK(error_of(p->link(bogus, kRoot, "z")) == ENOENT);
    CHECK(error_of(p->rename(bogus, "f", kRoot, "z", 0)) == ENOENT);
  }
  auto h1 = p->open(f, O_RDONLY);
  auto h2 = p->opendir(kRoot);
  REQUIRE(h1);
  REQUIRE(h2);
  CHECK(error_of(p->open(f, O_RDONLY)) == EMFILE);
  CHECK(error_of(p->opendir(kRoot)) == EMFILE);
  CHECK(error_of(p->create(kRoot, "g", 0644, O_RDWR, kCaller)) == EMFILE);
  CHECK(error_of(p->read(f, h2->handle, 0, 1)) == EBADF);
  CHECK(error_of(p->read(kRoot, h1->handle, 0, 1)) == EBADF);
  CHECK(error_of(p->getattr(f, 4242)) == EBADF);
  CHECK(error_of(p->release(f, 4242)) == EBADF);
  CHECK(error_of(p->write(f, h1->handle, ~std::uint64_t{0}, bytes("x"))) == EBADF);
  // reset drops every handle and reference; the tree stays.
  p->reset();
  CHECK(error_of(p->read(f, h1->handle, 0, 1)) == EBADF);
  CHECK(contents(*p, look(*p, kRoot, "f")) == "x");
}

TEST_CASE("memory provider: offsets past off_t and empty ranges are refused") {
  auto p = make({{"f", "x", 0644}});
  NodeId f = look(*p, kRoot, "f");
  auto h = p->open(f, O_RDWR);
  REQUIRE(h);
  CHECK(error_of(p->write(f, h->handle, ~std::uint64_t{0} - 1, bytes("xyz"))) == EFBIG);
  CHECK(error_of(p->fallocate(f, h->handle, 0, ~std::uint64_t{0}, 10)) == EFBIG);
  CHECK(error_of(p->fallocate(f, h->handle, 0, 0, 0)) == EINVAL);
  CHECK(p->read(f, h->handle, ~std::uint64_t{0}, 10)->empty());
  CHECK(*p->write(f, h->handle, 0, {}) == 0);
}
