// The host provider against a real directory tree, played the way a hostile
// guest would: every test runs in a fresh temporary directory holding the
// served root and, beside it, an "outside" directory with a secret that no
// request sequence may read, change or add to.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "daemon/vfs/host_provider.hpp"

using namespace sandboxd;
using namespace sandboxd::vfs;
namespace fsys = std::filesystem;

namespace {

constexpr std::string_view kSecret = "the outside secret: 7c1f0a";
const Caller kCaller{1000, 1000, 42};

std::string slurp(const fsys::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fsys::path& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

Bytes bytes(std::string_view s) {
  auto b = as_bytes(s);
  return Bytes(b.begin(), b.end());
}

std::string text(const Bytes& b) { return std::string(as_chars(b)); }

struct stat lstat_of(const fsys::path& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

// What the outside directory holds, to compare before and after.
std::map<std::string, std::string> describe(const fsys::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fsys::recursive_directory_iterator(dir)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    std::string what = std::to_string(st.st_mode) + ":" + std::to_string(st.st_uid) + ":";
    if (S_ISREG(st.st_mode)) what += slurp(e.path());
    out[fsys::relative(e.path(), dir).string()] = what;
  }
  return out;
}

struct HostTree {
  fsys::path base, root, outside;
  std::map<std::string, std::string> outside_before;
  std::unique_ptr<HostProvider> provider;

  explicit HostTree(HostProvider::Options options = {}) {
    std::string pattern = (fsys::temp_directory_path() / "vfs-host-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    base = pattern;
    root = base / "root";
    outside = base / "outside";
    fsys::create_directories(root);
    fsys::create_directories(outside / "d");
    spit(outside / "secret", kSecret);
    spit(outside / "d" / "f", kSecret);
    outside_before = describe(outside);
    auto opened = HostProvider::open(root, options);
    REQUIRE(opened);
    provider = std::move(opened).value();
  }
  ~HostTree() {
    provider.reset();
    std::error_code ignored;
    fsys::remove_all(base, ignored);
  }

  // Nothing outside the root changed, and nothing appeared beside it.
  void check_outside() const {
    CHECK(describe(outside) == outside_before);
    std::set<std::string> beside;
    for (const auto& e : fsys::directory_iterator(base)) beside.insert(e.path().filename().string());
    CHECK(beside == std::set<std::string>{"outside", "root"});
  }

  HostProvider& p() { return *provider; }
  NodeId look(NodeId parent, std::string_view name) {
    auto e = provider->lookup(parent, name);
    REQUIRE(e);
    return e->node;
  }
  std::string read_all(NodeId node, Handle handle) {
    auto data = provider->read(node, handle, 0, wire::kMaxData);
    REQUIRE(data);
    return text(*data);
  }
};

template <class R>
int error_of(const R& result) {
  REQUIRE_FALSE(result);
  return result.error();
}

wire::Request set_request(std::uint32_t set) {
  wire::Request r;
  r.op = wire::Op::kSetattr;
  r.set = set;
  return r;
}

}  // namespace

TEST_CASE("host provider: names that are not one component are refused by every op") {
  HostTree t;
  spit(t.root / "a", "x");
  fsys::create_directories(t.root / "dir");
  NodeId root = wire::kRootNode;
  for (std::string bad : {std::string(".."), std::string("."), std::string("a/b"), std::string("../outside"),
                          std::string("/etc"), std::string("a\0b", 3), std::string(""), std::string("dir/")}) {
    INFO("name: " << bad);
    CHECK(error_of(t.p().lookup(root, bad)) == EINVAL);
    CHECK(error_of(t.p().mkdir(root, bad, 0755, kCaller)) == EINVAL);
    CHECK(error_of(t.p().mknod(root, bad, S_IFREG | 0644, 0, kCaller)) == EINVAL);
    CHECK(error_of(t.p().create(root, bad, 0644, O_RDWR, kCaller)) == EINVAL);
    CHECK(error_of(t.p().symlink(root, bad, "a", kCaller)) == EINVAL);
    CHECK(error_of(t.p().unlink(root, bad)) == EINVAL);
    CHECK(error_of(t.p().rmdir(root, bad)) == EINVAL);
    CHECK(error_of(t.p().rename(root, "a", root, bad, 0)) == EINVAL);
    CHECK(error_of(t.p().rename(root, bad, root, "z", 0)) == EINVAL);
    CHECK(error_of(t.p().link(t.look(root, "a"), root, bad)) == EINVAL);
  }
  CHECK(error_of(t.p().lookup(root, std::string(256, 'n'))) == ENAMETOOLONG);
  CHECK(fsys::exists(t.root / "a"));
  CHECK(fsys::exists(t.root / "dir"));
  t.check_outside();
}

TEST_CASE("host provider: a symlink to / or ../outside is a node to read, never a way out") {
  HostTree t;
  fsys::create_symlink("/", t.root / "abs");
  fsys::create_symlink("../outside", t.root / "up");
  fsys::create_symlink("../outside/secret", t.root / "sec");
  NodeId root = wire::kRootNode;

  for (const char* name : {"abs", "up", "sec"}) {
    INFO(name);
    auto e = t.p().lookup(root, name);
    REQUIRE(e);
    CHECK((e->attr.mode & S_IFMT) == S_IFLNK);
    NodeId link = e->node;
    // Everything that would go through it fails; nothing opens the target.
    CHECK_FALSE(t.p().lookup(link, "secret"));
    CHECK_FALSE(t.p().lookup(link, "etc"));
    CHECK(error_of(t.p().open(link, O_RDONLY)) == ELOOP);
    CHECK(error_of(t.p().open(link, O_RDWR | O_TRUNC)) == ELOOP);
    CHECK_FALSE(t.p().opendir(link));
    CHECK_FALSE(t.p().create(link, "new", 0644, O_RDWR, kCaller));
    CHECK_FALSE(t.p().mkdir(link, "new", 0755, kCaller));
    CHECK_FALSE(t.p().symlink(link, "new", "x", kCaller));
    CHECK_FALSE(t.p().mknod(link, "new", S_IFIFO | 0644, 0, kCaller));
    CHECK_FALSE(t.p().unlink(link, "secret"));
    CHECK_FALSE(t.p().rename(link, "secret", root, "stolen", 0));
    CHECK_FALSE(t.p().rename(root, "abs", link, "moved", 0));
    // Attributes are the link's own, not its target's.
    auto attr = t.p().getattr(link, wire::kNoHandle);
    REQUIRE(attr);
    CHECK((attr->mode & S_IFMT) == S_IFLNK);
    wire::Request chmod = set_request(wire::kSetMode | wire::kSetSize);
    chmod.mode = 0777;
    CHECK_FALSE(t.p().setattr(link, chmod, kCaller));
  }
  // readlink answers the text, which is all a link is to the host.
  CHECK(*t.p().readlink(t.look(root, "abs")) == "/");
  CHECK(*t.p().readlink(t.look(root, "up")) == "../outside");
  CHECK(*t.p().readlink(t.look(root, "sec")) == "../outside/secret");
  CHECK(error_of(t.p().readlink(root)) == EINVAL);

  // A link the guest makes is the same: its text is stored, never followed.
  auto made = t.p().symlink(root, "mine", "../outside/secret", kCaller);
  REQUIRE(made);
  CHECK(fsys::read_symlink(t.root / "mine") == "../outside/secret");
  CHECK(error_of(t.p().open(made->node, O_RDONLY)) == ELOOP);
  // Creating over a dangling link to the outside must not create its target.
  fsys::create_symlink("../outside/planted", t.root / "trap");
  CHECK(error_of(t.p().create(root, "trap", 0644, O_RDWR, kCaller)) == ELOOP);
  CHECK(error_of(t.p().create(root, "trap", 0644, O_RDWR | O_EXCL, kCaller)) == EEXIST);
  CHECK(error_of(t.p().mkdir(root, "trap", 0755, kCaller)) == EEXIST);
  // A hard link of a link is a link.
  auto hard = t.p().link(t.look(root, "sec"), root, "sec2");
  REQUIRE(hard);
  CHECK((hard->attr.mode & S_IFMT) == S_IFLNK);
  CHECK(error_of(t.p().open(hard->node, O_RDONLY)) == ELOOP);
  t.check_outside();
}

TEST_CASE("host provider: a directory the host swaps for a symlink is not followed") {
  HostTree t;
  fsys::create_directories(t.root / "d");
  spit(t.root / "d" / "f", "inside");
  NodeId root = wire::kRootNode;
  NodeId d = t.look(root, "d");
  NodeId f = t.look(d, "f");
  auto early = t.p().open(f, O_RDONLY);
  REQUIRE(early);

  // Between the guest's lookups and its next op, the host puts a symlink to
  // an outside directory that also holds a "d/f" where d was.
  fsys::rename(t.root / "d", t.root / "d.old");
  fsys::create_symlink("../outside/d", t.root / "d");

  CHECK(error_of(t.p().open(f, O_RDONLY)) == ELOOP);
  CHECK(error_of(t.p().getattr(f, wire::kNoHandle)) == ELOOP);
  CHECK_FALSE(t.p().lookup(d, "f"));
  CHECK_FALSE(t.p().lookup(d, "secret"));
  CHECK_FALSE(t.p().opendir(d));
  CHECK_FALSE(t.p().create(d, "g", 0644, O_WRONLY, kCaller));
  CHECK_FALSE(t.p().readlink(f));
  wire::Request truncate = set_request(wire::kSetSize);
  CHECK_FALSE(t.p().setattr(f, truncate, kCaller));
  // The descriptor opened before still names the file it opened.
  CHECK(t.read_all(f, early->handle) == "inside");
  // A file the host replaces is another node: the old number is stale.
  fsys::create_directories(t.root / "e");
  spit(t.root / "e" / "f", "first");
  NodeId e = t.look(root, "e");
  NodeId ef = t.look(e, "f");
  spit(t.root / "e" / "f.new", "second");
  fsys::rename(t.root / "e" / "f.new", t.root / "e" / "f");
  CHECK(error_of(t.p().getattr(ef, wire::kNoHandle)) == ENOENT);
  CHECK(error_of(t.p().open(ef, O_RDONLY)) == ENOENT);
  NodeId ef2 = t.look(e, "f");
  CHECK(ef2 != ef);
  CHECK(t.p().getattr(ef2, wire::kNoHandle)->size == 6);
  // So is a directory: names in the old node do not reach the new one.
  fsys::rename(t.root / "e", t.root / "e.old");
  fsys::create_directories(t.root / "e");
  CHECK(error_of(t.p().create(e, "g", 0644, O_RDWR, kCaller)) == ENOENT);
  CHECK_FALSE(fsys::exists(t.root / "e" / "g"));
  // Looking the name up again finds the symlink, as a new node.
  auto again = t.p().lookup(root, "d");
  REQUIRE(again);
  CHECK(again->node != d);
  CHECK((again->attr.mode & S_IFMT) == S_IFLNK);
  t.check_outside();
}

TEST_CASE("host provider: a renamed directory's children follow it under their old node numbers") {
  HostTree t;
  NodeId root = wire::kRootNode;
  auto d = t.p().mkdir(root, "d", 0755, kCaller);
  REQUIRE(d);
  auto f = t.p().create(d->node, "f", 0644, O_RDWR, kCaller);
  REQUIRE(f);
  REQUIRE(*t.p().write(f->entry.node, f->open.handle, 0, bytes("kept")) == 4);
  REQUIRE(t.p().release(f->entry.node, f->open.handle));

  REQUIRE(t.p().rename(root, "d", root, "e", 0));
  CHECK(slurp(t.root / "e" / "f") == "kept");
  // The old numbers now name the moved files.
  auto attr = t.p().getattr(f->entry.node, wire::kNoHandle);
  REQUIRE(attr);
  CHECK(attr->size == 4);
  auto opened = t.p().open(f->entry.node, O_RDONLY);
  REQUIRE(opened);
  CHECK(t.read_all(f->entry.node, opened->handle) == "kept");
  CHECK(t.look(root, "e") == d->node);
  CHECK(t.look(d->node, "f") == f->entry.node);
  // The old name, made again by the host, is a different node.
  fsys::create_directories(t.root / "d");
  spit(t.root / "d" / "f", "fresh");
  NodeId new_d = t.look(root, "d");
  CHECK(new_d != d->node);
  CHECK(t.look(new_d, "f") != f->entry.node);
  t.check_outside();
}

TEST_CASE("host provider: rename over, exchange and no-replace keep the node table true") {
  HostTree t;
  NodeId root = wire::kRootNode;
  spit(t.root / "a", "A");
  spit(t.root / "b", "B");
  NodeId a = t.look(root, "a");
  NodeId b = t.look(root, "b");

  CHECK(error_of(t.p().rename(root, "a", root, "b", RENAME_NOREPLACE)) == EEXIST);
  CHECK(error_of(t.p().rename(root, "a", root, "b", RENAME_NOREPLACE | RENAME_EXCHANGE)) == EINVAL);
  CHECK(error_of(t.p().rename(root, "a", root, "b", 1u << 7)) == EINVAL);

  REQUIRE(t.p().rename(root, "a", root, "b", RENAME_EXCHANGE));
  CHECK(slurp(t.root / "b") == "A");
  CHECK(t.look(root, "b") == a);
  CHECK(t.look(root, "a") == b);
  auto h = t.p().open(a, O_RDONLY);
  REQUIRE(h);
  CHECK(t.read_all(a, h->handle) == "A");

  // Plain rename over: the node that was at the target is gone.
  REQUIRE(t.p().rename(root, "b", root, "a", 0));
  CHECK(slurp(t.root / "a") == "A");
  CHECK(t.look(root, "a") == a);
  CHECK(error_of(t.p().getattr(b, wire::kNoHandle)) == ENOENT);
  CHECK(error_of(t.p().open(b, O_RDONLY)) == ENOENT);
  // Renaming one name of a file onto another name of it changes nothing.
  REQUIRE(t.p().link(a, root, "a2"));
  REQUIRE(t.p().rename(root, "a", root, "a2", 0));
  CHECK(fsys::exists(t.root / "a"));
  CHECK(t.p().getattr(a, wire::kNoHandle));
  t.check_outside();
}

TEST_CASE("host provider: unlink, rmdir and link edit the node table") {
  HostTree t;
  NodeId root = wire::kRootNode;
  fsys::create_directories(t.root / "d" / "sub");
  spit(t.root / "d" / "sub" / "x", "x");
  NodeId d = t.look(root, "d");
  NodeId sub = t.look(d, "sub");
  NodeId x = t.look(sub, "x");
  CHECK(error_of(t.p().rmdir(d, "sub")) == ENOTEMPTY);
  CHECK(error_of(t.p().unlink(d, "sub")) == EISDIR);
  auto linked = t.p().link(x, root, "y");
  REQUIRE(linked);
  CHECK(linked->attr.nlink == 2);
  CHECK(slurp(t.root / "y") == "x");
  CHECK(error_of(t.p().link(d, root, "dlink")) == EPERM);
  CHECK(error_of(t.p().link(root, root, "rootlink")) == EPERM);
  REQUIRE(t.p().unlink(sub, "x"));
  CHECK(error_of(t.p().getattr(x, wire::kNoHandle)) == ENOENT);
  // The removed node stays removed when the name is made again.
  spit(t.root / "d" / "sub" / "x", "another file");
  CHECK(error_of(t.p().getattr(x, wire::kNoHandle)) == ENOENT);
  CHECK(t.look(sub, "x") != x);
  REQUIRE(t.p().unlink(sub, "x"));
  REQUIRE(t.p().rmdir(d, "sub"));
  CHECK(error_of(t.p().getattr(sub, wire::kNoHandle)) == ENOENT);
  fsys::create_directories(t.root / "d" / "sub");
  CHECK(error_of(t.p().getattr(sub, wire::kNoHandle)) == ENOENT);
  CHECK(error_of(t.p().opendir(sub)) == ENOENT);
  CHECK(error_of(t.p().lookup(sub, "x")) == ENOENT);
  CHECK(error_of(t.p().mkdir(sub, "again", 0755, kCaller)) == ENOENT);
  CHECK(t.p().getattr(linked->node, wire::kNoHandle)->nlink == 1);
  t.check_outside();
}

TEST_CASE("host provider: set-id bits are stripped, devices refused, modes exact despite the umask") {
  HostTree t;
  NodeId root = wire::kRootNode;
  mode_t old_umask = ::umask(077);
  auto created = t.p().create(root, "suid", S_IFREG | 04755, O_WRONLY, kCaller);
  auto dir = t.p().mkdir(root, "sgid", 02775, kCaller);
  auto node = t.p().mknod(root, "plain", S_IFREG | 06666, 0, kCaller);
  ::umask(old_umask);
  REQUIRE(created);
  REQUIRE(dir);
  REQUIRE(node);
  CHECK((lstat_of(t.root / "suid").st_mode & 07777) == 0755);
  CHECK((lstat_of(t.root / "sgid").st_mode & 07777) == 0775);
  CHECK((lstat_of(t.root / "plain").st_mode & 07777) == 0666);
  CHECK((created->entry.attr.mode & 07777) == 0755);

  wire::Request chmod = set_request(wire::kSetMode);
  chmod.mode = S_IFREG | 06755;
  auto changed = t.p().setattr(created->entry.node, chmod, kCaller);
  REQUIRE(changed);
  CHECK((changed->mode & 07777) == 0755);
  CHECK((lstat_of(t.root / "suid").st_mode & 07777) == 0755);
  chmod.mode = S_IFDIR | 01777 | S_ISGID;
  REQUIRE(t.p().setattr(dir->node, chmod, kCaller));
  CHECK((lstat_of(t.root / "sgid").st_mode & 07777) == 01777);
  // Through a handle, too.
  chmod.handle = created->open.handle;
  chmod.mode = 04700;
  REQUIRE(t.p().setattr(created->entry.node, chmod, kCaller));
  CHECK((lstat_of(t.root / "suid").st_mode & 07777) == 0700);

  for (std::uint32_t type : {std::uint32_t{S_IFCHR}, std::uint32_t{S_IFBLK}, std::uint32_t{S_IFSOCK},
                             std::uint32_t{S_IFDIR}, std::uint32_t{S_IFLNK}}) {
    CHECK(error_of(t.p().mknod(root, "dev", type | 0666, makedev(1, 3), kCaller)) == EPERM);
    CHECK_FALSE(fsys::exists(fsys::symlink_status(t.root / "dev")));
  }
  auto fifo = t.p().mknod(root, "fifo", S_IFIFO | 0644, 0, kCaller);
  REQUIRE(fifo);
  CHECK(S_ISFIFO(lstat_of(t.root / "fifo").st_mode));
  // Opening a FIFO would wait for a writer; it is refused at once instead.
  CHECK(error_of(t.p().open(fifo->node, O_RDONLY)) == ENXIO);
  CHECK(error_of(t.p().open(root, O_RDONLY)) == EISDIR);
  CHECK(error_of(t.p().open(node->node, O_PATH)) == EINVAL);
  CHECK(error_of(t.p().open(node->node, O_DIRECTORY)) == EINVAL);
  CHECK(error_of(t.p().open(node->node, O_ACCMODE)) == EINVAL);
  t.check_outside();
}

TEST_CASE("host provider: owners are the caller's when the daemon is root, else changes are EPERM") {
  if (::geteuid() == 0) {
    HostTree t;
    auto made = t.p().create(wire::kRootNode, "owned", 0644, O_RDWR, Caller{1234, 5678, 1});
    REQUIRE(made);
    CHECK(lstat_of(t.root / "owned").st_uid == 1234);
    CHECK(lstat_of(t.root / "owned").st_gid == 5678);
    auto link = t.p().symlink(wire::kRootNode, "l", "owned", Caller{1234, 5678, 1});
    REQUIRE(link);
    CHECK(lstat_of(t.root / "l").st_uid == 1234);
    wire::Request chown = set_request(wire::kSetUid);
    chown.uid_to = 4321;
    auto changed = t.p().setattr(made->entry.node, chown, kCaller);
    REQUIRE(changed);
    CHECK(changed->uid == 4321);
    CHECK(lstat_of(t.root / "owned").st_gid == 5678);
  }
  HostProvider::Options options;
  options.chown_to_caller = false;
  HostTree t(options);
  auto made = t.p().mkdir(wire::kRootNode, "mine", 0755, Caller{1234, 5678, 1});
  REQUIRE(made);
  CHECK(lstat_of(t.root / "mine").st_uid == ::geteuid());
  wire::Request chown = set_request(wire::kSetUid | wire::kSetGid);
  chown.uid_to = 1234;
  chown.gid_to = 5678;
  CHECK(error_of(t.p().setattr(made->node, chown, kCaller)) == EPERM);
  // Asking for the owner it already has is no change.
  chown.uid_to = ::geteuid();
  chown.gid_to = lstat_of(t.root / "mine").st_gid;
  CHECK(t.p().setattr(made->node, chown, kCaller));
}

TEST_CASE("host provider: unknown nodes and handles are ENOENT and EBADF") {
  HostTree t;
  spit(t.root / "f", "data");
  fsys::create_directories(t.root / "d");
  NodeId root = wire::kRootNode;
  NodeId f = t.look(root, "f");
  NodeId d = t.look(root, "d");
  for (NodeId bogus : {NodeId{0}, NodeId{999}, ~NodeId{0}}) {
    CHECK(error_of(t.p().lookup(bogus, "f")) == ENOENT);
    CHECK(error_of(t.p().getattr(bogus, wire::kNoHandle)) == ENOENT);
    CHECK(error_of(t.p().open(bogus, O_RDONLY)) == ENOENT);
    CHECK(error_of(t.p().opendir(bogus)) == ENOENT);
    CHECK(error_of(t.p().readlink(bogus)) == ENOENT);
    CHECK(error_of(t.p().access(bogus, F_OK, kCaller)) == ENOENT);
    CHECK(error_of(t.p().link(bogus, root, "x")) == ENOENT);
    CHECK(error_of(t.p().mkdir(bogus, "x", 0755, kCaller)) == ENOENT);
    t.p().forget(bogus, 5);
  }
  auto file = t.p().open(f, O_RDONLY);
  auto dir = t.p().opendir(d);
  REQUIRE(file);
  REQUIRE(dir);
  for (Handle bogus : {Handle{0}, Handle{77777}, dir->handle}) {
    CHECK(error_of(t.p().read(f, bogus, 0, 10)) == EBADF);
    CHECK(error_of(t.p().write(f, bogus, 0, bytes("x"))) == EBADF);
    CHECK(error_of(t.p().getattr(f, bogus)) == EBADF);
    CHECK(error_of(t.p().fsync(f, bogus, false)) == EBADF);
    CHECK(error_of(t.p().flush(f, bogus)) == EBADF);
    CHECK(error_of(t.p().fallocate(f, bogus, 0, 0, 10)) == EBADF);
    CHECK(error_of(t.p().release(f, bogus)) == EBADF);
  }
  // A handle belongs to its node and its kind.
  CHECK(error_of(t.p().read(d, file->handle, 0, 10)) == EBADF);
  CHECK(error_of(t.p().readdir(d, file->handle, 0, 4096)) == EBADF);
  CHECK(error_of(t.p().readdir(root, dir->handle, 0, 4096)) == EBADF);
  CHECK(error_of(t.p().releasedir(d, file->handle)) == EBADF);
  // Read-only handles do not write.
  CHECK(error_of(t.p().write(f, file->handle, 0, bytes("x"))) == EBADF);
  CHECK(slurp(t.root / "f") == "data");
  // Offsets past what off_t holds.
  CHECK(error_of(t.p().read(f, file->handle, ~std::uint64_t{0}, 10)) == EINVAL);
  REQUIRE(t.p().release(f, file->handle));
  CHECK(error_of(t.p().release(f, file->handle)) == EBADF);
  REQUIRE(t.p().releasedir(d, dir->handle));
  CHECK(error_of(t.p().releasedir(d, dir->handle)) == EBADF);
  CHECK(t.p().handle_count() == 0);
}

TEST_CASE("host provider: the node and handle tables are capped") {
  HostProvider::Options options;
  options.max_nodes = 4;  // the root and three more
  options.max_handles = 2;
  HostTree t(options);
  NodeId root = wire::kRootNode;
  for (const char* name : {"a", "b", "c", "d", "e"}) spit(t.root / name, name);
  NodeId a = t.look(root, "a");
  t.look(root, "b");
  t.look(root, "c");
  CHECK(error_of(t.p().lookup(root, "d")) == ENFILE);
  CHECK(error_of(t.p().create(root, "new", 0644, O_RDWR, kCaller)) == ENFILE);
  CHECK_FALSE(fsys::exists(t.root / "new"));
  CHECK(error_of(t.p().mkdir(root, "newdir", 0755, kCaller)) == ENFILE);
  CHECK_FALSE(fsys::exists(t.root / "newdir"));
  // A repeated lookup is the same node, so it needs no room.
  CHECK(t.look(root, "a") == a);
  t.p().forget(a, 2);
  CHECK(t.p().node_count() == 3);
  NodeId d = t.look(root, "d");
  CHECK(d != a);

  auto h1 = t.p().open(d, O_RDONLY);
  auto h2 = t.p().opendir(root);
  REQUIRE(h1);
  REQUIRE(h2);
  CHECK(error_of(t.p().open(d, O_RDONLY)) == EMFILE);
  CHECK(error_of(t.p().opendir(root)) == EMFILE);
  REQUIRE(t.p().release(d, h1->handle));
  CHECK(t.p().open(d, O_RDONLY));

  // reset drops everything the guest held.
  t.p().reset();
  CHECK(t.p().node_count() == 1);
  CHECK(t.p().handle_count() == 0);
  CHECK(error_of(t.p().getattr(d, wire::kNoHandle)) == ENOENT);
  CHECK(t.look(root, "d") != d);  // numbers are never reused
}

TEST_CASE("host provider: create, write and read round trip; an unlinked open file still works") {
  HostTree t;
  NodeId root = wire::kRootNode;
  auto made = t.p().create(root, "f", 0640, O_RDWR, kCaller);
  REQUIRE(made);
  NodeId f = made->entry.node;
  Handle h = made->open.handle;
  struct ::stat host_st {};
  REQUIRE(::stat((t.root / "f").c_str(), &host_st) == 0);
  CHECK(made->entry.attr.ino == host_st.st_ino);
  CHECK(made->entry.entry_timeout_ms == 0);
  CHECK(made->entry.attr_timeout_ms == 0);
  CHECK(*t.p().write(f, h, 0, bytes("hello world")) == 11);
  CHECK(*t.p().write(f, h, 20, bytes("!")) == 1);
  CHECK(slurp(t.root / "f") == std::string("hello world") + std::string(9, '\0') + "!");
  CHECK(text(*t.p().read(f, h, 6, 5)) == "world");
  CHECK(text(*t.p().read(f, h, 20, 100)) == "!");
  CHECK(t.p().read(f, h, 1000, 100)->empty());
  CHECK(t.p().getattr(f, h)->size == 21);
  CHECK(t.p().flush(f, h));
  CHECK(t.p().fsync(f, h, true));
  CHECK(t.p().fsync(f, h, false));
  CHECK(t.p().fallocate(f, h, 0, 0, 4096));
  CHECK(t.p().getattr(f, h)->size == 4096);
  CHECK(error_of(t.p().create(root, "f", 0644, O_RDWR | O_EXCL, kCaller)) == EEXIST);
  // Without O_EXCL an existing file is opened (and truncated if asked).
  auto again = t.p().create(root, "f", 0644, O_RDWR | O_TRUNC, kCaller);
  REQUIRE(again);
  CHECK(again->entry.node == f);
  CHECK(again->entry.attr.size == 0);
  REQUIRE(t.p().release(f, again->open.handle));
  REQUIRE(*t.p().write(f, h, 0, bytes("still here")) == 10);

  REQUIRE(t.p().unlink(root, "f"));
  CHECK_FALSE(fsys::exists(t.root / "f"));
  CHECK(text(*t.p().read(f, h, 0, 100)) == "still here");
  CHECK(*t.p().write(f, h, 0, bytes("S")) == 1);
  CHECK(text(*t.p().read(f, h, 0, 100)) == "Still here");
  CHECK(t.p().getattr(f, h)->nlink == 0);
  CHECK(error_of(t.p().getattr(f, wire::kNoHandle)) == ENOENT);
  CHECK(error_of(t.p().open(f, O_RDONLY)) == ENOENT);
  // Truncating by handle works on the unlinked file, by path it cannot.
  wire::Request truncate = set_request(wire::kSetSize);
  truncate.size_to = 3;
  truncate.handle = h;
  CHECK(t.p().setattr(f, truncate, kCaller)->size == 3);
  truncate.handle = wire::kNoHandle;
  CHECK(error_of(t.p().setattr(f, truncate, kCaller)) == ENOENT);
  REQUIRE(t.p().release(f, h));

  // O_APPEND and O_TRUNC are the host's to apply.
  spit(t.root / "g", "abc");
  NodeId g = t.look(root, "g");
  auto appending = t.p().open(g, O_WRONLY | O_APPEND);
  REQUIRE(appending);
  REQUIRE(*t.p().write(g, appending->handle, 0, bytes("def")) == 3);
  CHECK(slurp(t.root / "g") == "abcdef");
  auto truncating = t.p().open(g, O_WRONLY | O_TRUNC);
  REQUIRE(truncating);
  CHECK(slurp(t.root / "g").empty());
  t.check_outside();
}

TEST_CASE("host provider: setattr sizes and times, statfs, access") {
  HostTree t;
  NodeId root = wire::kRootNode;
  spit(t.root / "f", "0123456789");
  NodeId f = t.look(root, "f");
  wire::Request r = set_request(wire::kSetSize);
  r.size_to = 4;
  CHECK(t.p().setattr(f, r, kCaller)->size == 4);
  CHECK(slurp(t.root / "f") == "0123");
  r.size_to = ~std::uint64_t{0};
  CHECK(error_of(t.p().setattr(f, r, kCaller)) == EFBIG);

  r = set_request(wire::kSetMtime | wire::kSetAtime);
  r.mtime_to = {1'000'000'000, 5};
  r.atime_to = {1'100'000'000, 7};
  auto attr = t.p().setattr(f, r, kCaller);
  REQUIRE(attr);
  CHECK(attr->mtime == wire::Timespec{1'000'000'000, 5});
  CHECK(attr->atime == wire::Timespec{1'100'000'000, 7});
  CHECK(lstat_of(t.root / "f").st_mtim.tv_sec == 1'000'000'000);
  r = set_request(wire::kSetMtimeNow);
  CHECK(t.p().setattr(f, r, kCaller)->mtime.sec > 1'000'000'000);
  CHECK(lstat_of(t.root / "f").st_atim.tv_sec == 1'100'000'000);  // left alone
  // Times of the root and of a symlink (never its target).
  fsys::create_symlink("../outside/secret", t.root / "l");
  NodeId l = t.look(root, "l");
  r = set_request(wire::kSetMtime);
  r.mtime_to = {1'200'000'000, 0};
  CHECK(t.p().setattr(l, r, kCaller));
  CHECK(lstat_of(t.root / "l").st_mtim.tv_sec == 1'200'000'000);
  CHECK(t.p().setattr(root, r, kCaller)->mtime.sec == 1'200'000'000);

  auto fs = t.p().statfs(root);
  REQUIRE(fs);
  CHECK(fs->block_size > 0);
  CHECK(fs->name_max == 255);
  CHECK(t.p().access(f, R_OK | W_OK, kCaller));
  CHECK(t.p().access(root, X_OK, kCaller));
  fsys::remove(t.root / "f");
  CHECK(error_of(t.p().access(f, F_OK, kCaller)) == ENOENT);
  t.check_outside();
}

TEST_CASE("host provider: readdir pages in a small budget give every entry exactly once") {
  HostTree t;
  NodeId root = wire::kRootNode;
  std::set<std::string> expected;
  for (int i = 0; i < 60; ++i) {
    std::string name = "entry-" + std::string(static_cast<std::size_t>(i % 17), 'x') + std::to_string(i);
    spit(t.root / name, "");
    expected.insert(name);
  }
  fsys::create_directories(t.root / "sub");
  expected.insert("sub");
  REQUIRE(t.look(root, "sub") != 0);
  auto dir = t.p().opendir(root);
  REQUIRE(dir);
  // Changes after opendir do not disturb the listing.
  spit(t.root / "late", "");
  std::multiset<std::string> seen;
  std::uint64_t offset = 0;
  int pages = 0;
  for (;;) {
    auto page = t.p().readdir(root, dir->handle, offset, 120);
    REQUIRE(page);
    if (page->empty()) break;
    ++pages;
    std::uint32_t used = 0;
    for (const auto& e : *page) {
      used += dirent_size(e.name);
      seen.insert(e.name);
      struct ::stat host_st {};
      REQUIRE(::lstat((t.root / e.name).c_str(), &host_st) == 0);
      CHECK(e.ino == host_st.st_ino);
      CHECK(e.type == (host_st.st_mode & S_IFMT));
    }
    CHECK(used <= 120);
    offset = page->back().next_offset;
  }
  CHECK(pages > 10);
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == expected);
  CHECK(seen.size() == expected.size());
  // Too small for one entry is an error, not the end.
  CHECK(error_of(t.p().readdir(root, dir->handle, 0, 16)) == EINVAL);
  CHECK(t.p().readdir(root, dir->handle, 1'000'000, 4096)->empty());
  REQUIRE(t.p().releasedir(root, dir->handle));
}

TEST_CASE("host provider: directory snapshots are bounded") {
  HostProvider::Options options;
  options.max_listed_entries = 10;
  HostTree t(options);
  for (int i = 0; i < 7; ++i) spit(t.root / ("f" + std::to_string(i)), "");
  auto first = t.p().opendir(wire::kRootNode);  // five entries
  REQUIRE(first);
  CHECK(error_of(t.p().opendir(wire::kRootNode)) == ENOMEM);
  REQUIRE(t.p().releasedir(wire::kRootNode, first->handle));
  CHECK(t.p().opendir(wire::kRootNode));
}

TEST_CASE("host provider: a hard link the host made to an outside file is just a file in the root") {
  HostTree t;
  spit(t.outside / "shared", "shared by the host");
  fsys::create_hard_link(t.outside / "shared", t.root / "hl");
  auto e = t.p().lookup(wire::kRootNode, "hl");
  REQUIRE(e);
  CHECK(e->attr.nlink == 2);
  auto h = t.p().open(e->node, O_RDONLY);
  REQUIRE(h);
  CHECK(t.read_all(e->node, h->handle) == "shared by the host");
}
