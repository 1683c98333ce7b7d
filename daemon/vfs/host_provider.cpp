#include "daemon/vfs/host_provider.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <limits>

#include "protocol/fs_codec.hpp"

// fchmodat2 (Linux 6.6) changes a mode through an O_PATH descriptor. Its
// number is the same on every architecture that uses the common table.
#if !defined(SYS_fchmodat2) && (defined(__x86_64__) || defined(__aarch64__))
#define SYS_fchmodat2 452
#endif

namespace sandboxd::vfs {

namespace {

constexpr std::uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
constexpr std::uint32_t kSetIdBits = S_ISUID | S_ISGID;
// The open(2) flags a guest may pass on to the host file.
constexpr std::uint32_t kPassedFlags = O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_NONBLOCK;
constexpr std::uint32_t kRefusedFlags = O_PATH | O_DIRECTORY | O_TMPFILE;

int last_error() { return errno != 0 ? errno : EIO; }

// 0, or why `name` may not name an entry: it must be one component.
int name_error(std::string_view name) {
  if (name.size() > wire::kMaxName) return ENAMETOOLONG;
  return wire::valid_name(name) ? 0 : EINVAL;
}

wire::Timespec to_wire(const struct ::timespec& t) {
  return {static_cast<std::int64_t>(t.tv_sec), static_cast<std::uint32_t>(t.tv_nsec)};
}

// FUSE carries rdev in the kernel's "new" 32-bit encoding.
std::uint32_t encode_dev(dev_t dev) {
  auto major_number = static_cast<std::uint32_t>(major(dev));
  auto minor_number = static_cast<std::uint32_t>(minor(dev));
  return (minor_number & 0xff) | ((major_number & 0xfff) << 8) | ((minor_number & ~0xffu) << 12);
}

template <class T>
std::uint32_t clamp32(T v) {
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(v), UINT32_MAX));
}

bool fits_off_t(std::uint64_t v) { return v <= static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()); }

Result<struct ::stat> stat_fd(int fd) {
  struct ::stat st {};
  if (::fstat(fd, &st) != 0) return fail(last_error());
  return st;
}

}  // namespace

// ---- small types ----------------------------------------------------------

HostProvider::Fd& HostProvider::Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

HostProvider::Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

bool HostProvider::ChildLess::operator()(const std::pair<NodeId, std::string>& a,
                                         const std::pair<NodeId, std::string>& b) const {
  return a < b;
}
bool HostProvider::ChildLess::operator()(const std::pair<NodeId, std::string>& a, const ChildKey& b) const {
  return a.first != b.parent ? a.first < b.parent : std::string_view(a.second) < b.name;
}
bool HostProvider::ChildLess::operator()(const ChildKey& a, const std::pair<NodeId, std::string>& b) const {
  return a.parent != b.first ? a.parent < b.first : a.name < std::string_view(b.second);
}

// ---- life -----------------------------------------------------------------

Result<std::unique_ptr<HostProvider>> HostProvider::open(const std::filesystem::path& root, Options options) {
  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(last_error());
  Fd root_fd(fd);
  // Everything depends on openat2; find out now rather than on every request.
  struct ::open_how how {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = kResolve;
  long probe = ::syscall(SYS_openat2, root_fd.get(), ".", &how, sizeof how);
  if (probe < 0) return fail(last_error());
  ::close(static_cast<int>(probe));
  return std::unique_ptr<HostProvider>(new HostProvider(std::move(root_fd), options));
}

HostProvider::HostProvider(Fd root, Options options)
    : root_(std::move(root)), options_(options), chown_to_caller_(options.chown_to_caller.value_or(::geteuid() == 0)) {
  nodes_.emplace(wire::kRootNode, Node{});
}

HostProvider::~HostProvider() = default;

void HostProvider::reset() {
  handles_.clear();
  listed_entries_ = 0;
  by_name_.clear();
  nodes_.clear();
  nodes_.emplace(wire::kRootNode, Node{});
}

// ---- resolution -----------------------------------------------------------

Result<std::string> HostProvider::path_of(NodeId node) const {
  if (node == wire::kRootNode) return std::string(".");
  std::vector<std::string_view> names;
  std::size_t length = 0;
  NodeId at = node;
  while (at != wire::kRootNode) {
    auto it = nodes_.find(at);
    if (it == nodes_.end() || it->second.detached) return fail(ENOENT);
    names.push_back(it->second.name);
    length += it->second.name.size() + 1;
    // Every step adds at least two bytes, so this also ends any cycle.
    if (length > wire::kMaxPath) return fail(ENAMETOOLONG);
    at = it->second.parent;
  }
  std::string path;
  path.reserve(length);
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    if (!path.empty()) path += '/';
    path += *it;
  }
  return path;
}

Result<HostProvider::Fd> HostProvider::open_beneath(int dir_fd, const std::string& path, int flags,
                                                    std::uint32_t mode) const {
  struct ::open_how how {};
  how.flags = static_cast<std::uint64_t>(flags) | O_NOFOLLOW | O_CLOEXEC;
  how.mode = (flags & O_CREAT) != 0 ? mode : 0;
  how.resolve = kResolve;
  // EAGAIN: the kernel could not rule out a race with a concurrent rename;
  // it asks the caller to try again.
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, dir_fd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return Fd(static_cast<int>(fd));
    if ((errno == EAGAIN || errno == EINTR) && attempt < 8) continue;
    return fail(last_error());
  }
}

Result<HostProvider::Fd> HostProvider::open_node(NodeId node, int flags) const {
  auto path = path_of(node);
  if (!path) return fail(path.error());
  auto fd = open_beneath(root_.get(), *path, flags);
  if (!fd) return fd;
  if (auto same = check_same(node, fd->get()); !same) return fail(same.error());
  return fd;
}

Result<void> HostProvider::check_same(NodeId node, int fd) const {
  if (node == wire::kRootNode) return {};
  auto st = stat_fd(fd);
  if (!st) return fail(st.error());
  auto it = nodes_.find(node);
  if (it == nodes_.end() || st->st_dev != it->second.dev || st->st_ino != it->second.ino) return fail(ENOENT);
  return {};
}

Result<HostProvider::Fd> HostProvider::open_parent(NodeId node) const { return open_node(node, O_PATH | O_DIRECTORY); }

Result<HostProvider::Fd> HostProvider::open_regular(int dir_fd, const std::string& path, std::uint32_t flags,
                                                    bool create) const {
  if ((flags & kRefusedFlags) != 0 || (flags & O_ACCMODE) == O_ACCMODE) return fail(EINVAL);
  // O_NONBLOCK until the file is known to be regular: opening a FIFO put in
  // its place must not hang the provider.
  int host_flags = static_cast<int>(flags & kPassedFlags) | O_NONBLOCK | O_NOCTTY;
  if (create) host_flags |= O_CREAT | O_EXCL;
  auto fd = open_beneath(dir_fd, path, host_flags, 0600);
  if (!fd) return fail(fd.error());
  auto st = stat_fd(fd->get());
  if (!st) return fail(st.error());
  if (S_ISDIR(st->st_mode)) return fail(EISDIR);
  if (!S_ISREG(st->st_mode)) return fail(ENXIO);
  if ((flags & O_NONBLOCK) == 0) {
    int status = ::fcntl(fd->get(), F_GETFL);
    if (status < 0 || ::fcntl(fd->get(), F_SETFL, status & ~O_NONBLOCK) != 0) return fail(last_error());
  }
  return std::move(fd).value();
}

// ---- the node table -------------------------------------------------------

std::optional<NodeId> HostProvider::child(NodeId parent, std::string_view name) const {
  auto it = by_name_.find(ChildKey{parent, name});
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

Result<void> HostProvider::check_room(NodeId parent, std::string_view name) const {
  if (!child(parent, name) && nodes_.size() >= options_.max_nodes) return fail(ENFILE);
  return {};
}

Result<NodeId> HostProvider::remember(NodeId parent, std::string_view name, const struct ::stat& st) {
  if (auto known = child(parent, name)) {
    Node& n = nodes_.at(*known);
    if (n.dev == st.st_dev && n.ino == st.st_ino) {
      ++n.lookups;
      return *known;
    }
    // The host put another file there: the guest's node for the old one
    // must not become this one (its kernel would see a file change type).
    // The parent is not pruned: it is about to have a child again.
    unhook(*known);
    n.parent = 0;
    prune(*known);
  }
  if (nodes_.size() >= options_.max_nodes) {
    prune(parent);
    return fail(ENFILE);
  }
  NodeId id = next_node_++;
  nodes_.emplace(id, Node{});
  hook(id, parent, name);
  Node& n = nodes_.at(id);
  n.lookups = 1;
  n.dev = st.st_dev;
  n.ino = st.st_ino;
  return id;
}

void HostProvider::hook(NodeId node, NodeId parent, std::string_view name) {
  Node& n = nodes_.at(node);
  n.parent = parent;
  n.name = std::string(name);
  n.detached = false;
  by_name_.emplace(std::pair<NodeId, std::string>(parent, n.name), node);
  ++nodes_.at(parent).children;
}

void HostProvider::unhook(NodeId node) {
  Node& n = nodes_.at(node);
  if (n.detached || node == wire::kRootNode) return;
  auto it = by_name_.find(ChildKey{n.parent, n.name});
  if (it != by_name_.end() && it->second == node) by_name_.erase(it);
  --nodes_.at(n.parent).children;
  n.detached = true;
}

void HostProvider::detach(NodeId node) {
  NodeId parent = nodes_.at(node).parent;
  unhook(node);
  nodes_.at(node).parent = 0;
  prune(node);
  prune(parent);
}

void HostProvider::prune(NodeId node) {
  while (node != wire::kRootNode) {
    auto it = nodes_.find(node);
    if (it == nodes_.end() || it->second.lookups != 0 || it->second.children != 0) return;
    NodeId parent = it->second.detached ? 0 : it->second.parent;
    unhook(node);
    nodes_.erase(it);
    node = parent;
  }
}

void HostProvider::forget(NodeId node, std::uint64_t nlookup) {
  auto it = nodes_.find(node);
  if (it == nodes_.end() || node == wire::kRootNode) return;
  it->second.lookups -= std::min(nlookup, it->second.lookups);
  prune(node);
}

wire::Attr HostProvider::attr_of(const struct ::stat& st) const {
  wire::Attr a;
  // The host's inode number, not the node number: two names of one file
  // (a hard link) are then one file to stat(2) in the guest too, which git
  // checks after it links objects.
  a.ino = st.st_ino;
  a.size = static_cast<std::uint64_t>(std::max<off_t>(st.st_size, 0));
  a.blocks = static_cast<std::uint64_t>(std::max<blkcnt_t>(st.st_blocks, 0));
  a.atime = to_wire(st.st_atim);
  a.mtime = to_wire(st.st_mtim);
  a.ctime = to_wire(st.st_ctim);
  a.mode = st.st_mode;
  a.nlink = clamp32(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.rdev = encode_dev(st.st_rdev);
  a.blksize = clamp32(std::max<blksize_t>(st.st_blksize, 0));
  return a;
}

wire::Entry HostProvider::entry_of(NodeId node, const struct ::stat& st) const {
  wire::Entry e;
  e.node = node;
  e.attr = attr_of(st);
  e.entry_timeout_ms = options_.entry_timeout_ms;
  e.attr_timeout_ms = options_.attr_timeout_ms;
  return e;
}

// ---- lookups and attributes -----------------------------------------------

Result<wire::Entry> HostProvider::lookup(NodeId parent, std::string_view name) {
  if (int e = name_error(name)) return fail(e);
  auto dir = open_parent(parent);
  if (!dir) return fail(dir.error());
  auto fd = open_beneath(dir->get(), std::string(name), O_PATH);
  if (!fd) return fail(fd.error());
  auto st = stat_fd(fd->get());
  if (!st) return fail(st.error());
  auto node = remember(parent, name, *st);
  if (!node) return fail(node.error());
  return entry_of(*node, *st);
}

Result<wire::Attr> HostProvider::getattr(NodeId node, Handle handle) {
  if (handle != wire::kNoHandle) {
    auto h = file_handle(node, handle);
    if (!h) return fail(h.error());
    auto st = stat_fd((*h)->fd.get());
    if (!st) return fail(st.error());
    return attr_of(*st);
  }
  auto fd = open_node(node, O_PATH);
  if (!fd) return fail(fd.error());
  auto st = stat_fd(fd->get());
  if (!st) return fail(st.error());
  return attr_of(*st);
}

Result<wire::Attr> HostProvider::setattr(NodeId node, const wire::Request& request, const Caller&) {
  FileHandle* handle = nullptr;
  if (request.handle != wire::kNoHandle) {
    auto h = file_handle(node, request.handle);
    if (!h) return fail(h.error());
    handle = *h;
  }
  // An O_PATH descriptor of the node for what needs one: the handle's file
  // when there is one (it may be unlinked), else the node's path.
  Fd path_fd;
  if (handle == nullptr) {
    auto fd = open_node(node, O_PATH);
    if (!fd) return fail(fd.error());
    path_fd = std::move(fd).value();
  }
  int fd = handle != nullptr ? handle->fd.get() : path_fd.get();
  std::uint32_t set = request.set;
  if ((set & wire::kSetSize) != 0) {
    if (auto r = set_size(node, handle, request.size_to); !r) return fail(r.error());
  }
  if ((set & (wire::kSetUid | wire::kSetGid)) != 0) {
    if (auto r = set_owner(fd, request); !r) return fail(r.error());
  }
  if ((set & wire::kSetMode) != 0) {
    if (auto r = set_mode(node, fd, handle != nullptr, request.mode); !r) return fail(r.error());
  }
  if ((set & (wire::kSetAtime | wire::kSetMtime | wire::kSetAtimeNow | wire::kSetMtimeNow)) != 0) {
    if (auto r = set_times(node, handle, request); !r) return fail(r.error());
  }
  auto st = stat_fd(fd);
  if (!st) return fail(st.error());
  return attr_of(*st);
}

Result<void> HostProvider::set_size(NodeId node, const FileHandle* handle, std::uint64_t size) {
  if (!fits_off_t(size)) return fail(EFBIG);
  if (handle != nullptr && handle->access != O_RDONLY) {
    if (::ftruncate(handle->fd.get(), static_cast<off_t>(size)) != 0) return fail(last_error());
    return {};
  }
  auto path = path_of(node);
  if (!path) return fail(path.error());
  auto fd = open_regular(root_.get(), *path, O_WRONLY, false);
  if (!fd) return fail(fd.error());
  if (auto same = check_same(node, fd->get()); !same) return fail(same.error());
  if (::ftruncate(fd->get(), static_cast<off_t>(size)) != 0) return fail(last_error());
  return {};
}

Result<void> HostProvider::set_owner(int fd, const wire::Request& request) {
  bool set_uid = (request.set & wire::kSetUid) != 0, set_gid = (request.set & wire::kSetGid) != 0;
  if (!chown_to_caller_) {
    // The daemon cannot give files away; asking for the owner a file
    // already has is still fine (cp -p, tar).
    auto st = stat_fd(fd);
    if (!st) return fail(st.error());
    if ((set_uid && request.uid_to != st->st_uid) || (set_gid && request.gid_to != st->st_gid)) return fail(EPERM);
    return {};
  }
  auto uid = set_uid ? static_cast<uid_t>(request.uid_to) : static_cast<uid_t>(-1);
  auto gid = set_gid ? static_cast<gid_t>(request.gid_to) : static_cast<gid_t>(-1);
  if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return fail(last_error());
  return {};
}

Result<void> HostProvider::set_mode(NodeId node, int fd, bool real_fd, std::uint32_t mode) {
  auto bits = static_cast<mode_t>(mode & 07777 & ~kSetIdBits);
  if (real_fd) {
    if (::fchmod(fd, bits) != 0) return fail(last_error());
    return {};
  }
#ifdef SYS_fchmodat2
  if (::syscall(SYS_fchmodat2, fd, "", bits, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0) return {};
  if (errno != ENOSYS) return fail(last_error());
#endif
  // Without fchmodat2 an O_PATH descriptor cannot be chmod'ed: open the
  // node for real (never a device or socket, whose open could act) and make
  // sure it is still the same file.
  auto st = stat_fd(fd);
  if (!st) return fail(st.error());
  int flags = 0;
  if (S_ISDIR(st->st_mode)) {
    flags = O_RDONLY | O_DIRECTORY;
  } else if (S_ISREG(st->st_mode) || S_ISFIFO(st->st_mode)) {
    flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
  } else if (S_ISLNK(st->st_mode)) {
    return fail(EOPNOTSUPP);
  } else {
    return fail(EPERM);
  }
  auto real = open_node(node, flags);
  if (!real) return fail(real.error());
  auto again = stat_fd(real->get());
  if (!again) return fail(again.error());
  if (again->st_dev != st->st_dev || again->st_ino != st->st_ino) return fail(ENOENT);
  if (::fchmod(real->get(), bits) != 0) return fail(last_error());
  return {};
}

Result<void> HostProvider::set_times(NodeId node, const FileHandle* handle, const wire::Request& request) {
  struct ::timespec times[2]{};
  auto pick = [](std::uint32_t set, std::uint32_t now_bit, std::uint32_t value_bit, const wire::Timespec& value) {
    struct ::timespec t {};
    if ((set & now_bit) != 0) {
      t.tv_nsec = UTIME_NOW;
    } else if ((set & value_bit) != 0) {
      t.tv_sec = static_cast<time_t>(value.sec);
      t.tv_nsec = static_cast<long>(std::min<std::uint32_t>(value.nsec, 999'999'999));
    } else {
      t.tv_nsec = UTIME_OMIT;
    }
    return t;
  };
  times[0] = pick(request.set, wire::kSetAtimeNow, wire::kSetAtime, request.atime_to);
  times[1] = pick(request.set, wire::kSetMtimeNow, wire::kSetMtime, request.mtime_to);
  if (handle != nullptr) {
    if (::futimens(handle->fd.get(), times) != 0) return fail(last_error());
    return {};
  }
  if (node == wire::kRootNode) {
    auto fd = open_node(node, O_RDONLY | O_DIRECTORY);
    if (!fd) return fail(fd.error());
    if (::futimens(fd->get(), times) != 0) return fail(last_error());
    return {};
  }
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.detached) return fail(ENOENT);
  auto dir = open_parent(it->second.parent);
  if (!dir) return fail(dir.error());
  if (::utimensat(dir->get(), it->second.name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return fail(last_error());
  return {};
}

Result<std::string> HostProvider::readlink(NodeId node) {
  auto fd = open_node(node, O_PATH);
  if (!fd) return fail(fd.error());
  auto st = stat_fd(fd->get());
  if (!st) return fail(st.error());
  if (!S_ISLNK(st->st_mode)) return fail(EINVAL);
  std::string target(wire::kMaxPath + 1, '\0');
  ssize_t n = ::readlinkat(fd->get(), "", target.data(), target.size());
  if (n < 0) return fail(last_error());
  if (static_cast<std::size_t>(n) > wire::kMaxPath) return fail(ENAMETOOLONG);
  target.resize(static_cast<std::size_t>(n));
  return target;
}

Result<void> HostProvider::access(NodeId node, std::uint32_t, const Caller&) {
  // The guest kernel checks permissions (default_permissions); this only
  // says the node is still there.
  auto fd = open_node(node, O_PATH);
  if (!fd) return fail(fd.error());
  return {};
}

Result<wire::StatFs> HostProvider::statfs(NodeId) {
  struct ::statvfs fs {};
  if (::fstatvfs(root_.get(), &fs) != 0) return fail(last_error());
  wire::StatFs out;
  out.blocks = fs.f_blocks;
  out.blocks_free = fs.f_bfree;
  out.blocks_available = fs.f_bavail;
  out.files = fs.f_files;
  out.files_free = fs.f_ffree;
  out.block_size = clamp32(fs.f_bsize);
  out.fragment_size = clamp32(fs.f_frsize);
  out.name_max = std::min<std::uint32_t>(clamp32(fs.f_namemax), wire::kMaxName);
  return out;
}

// ---- making and removing names ---------------------------------------------

Result<wire::Entry> HostProvider::finish_new(NodeId parent, int dir_fd, std::string_view name, const Fd& fd,
                                             std::optional<std::uint32_t> mode, const Caller& caller) {
  auto undo = [&](int error) -> Result<wire::Entry> {
    std::string n(name);
    auto st = stat_fd(fd.get());
    ::unlinkat(dir_fd, n.c_str(), st && S_ISDIR(st->st_mode) ? AT_REMOVEDIR : 0);
    return fail(error);
  };
  if (chown_to_caller_ && ::fchownat(fd.get(), "", static_cast<uid_t>(caller.uid), static_cast<gid_t>(caller.gid),
                                     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
    return undo(last_error());
  // fchmod, unlike creating, ignores the daemon's umask.
  if (mode && ::fchmod(fd.get(), static_cast<mode_t>(*mode & 07777 & ~kSetIdBits)) != 0) return undo(last_error());
  auto st = stat_fd(fd.get());
  if (!st) return undo(st.error());
  auto node = remember(parent, name, *st);
  if (!node) return undo(node.error());
  return entry_of(*node, *st);
}

Result<wire::Entry> HostProvider::mknod(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t,
                                        const Caller& caller) {
  if (int e = name_error(name)) return fail(e);
  std::uint32_t type = mode & S_IFMT;
  // Device nodes would give the guest the host's devices; sockets and the
  // rest have no use here.
  if (type != 0 && type != S_IFREG && type != S_IFIFO) return fail(EPERM);
  auto dir = open_parent(parent);
  if (!dir) return fail(dir.error());
  if (auto room = check_room(parent, name); !room) return fail(room.error());
  std::string n(name);
  Fd fd;
  if (type == S_IFIFO) {
    if (::mknodat(dir->get(), n.c_str(), S_IFIFO | 0600, 0) != 0) return fail(last_error());
    auto opened = open_beneath(dir->get(), n, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (!opened) {
      ::unlinkat(dir->get(), n.c_str(), 0);
      return fail(opened.error());
    }
    fd = std::move(opened).value();
  } else {
    auto opened = open_beneath(dir->get(), n, O_CREAT | O_EXCL | O_RDONLY | O_NONBLOCK | O_NOCTTY, 0600);
    if (!opened) return fail(opened.error());
    fd = std::move(opened).value();
  }
  return finish_new(parent, dir->get(), name, fd, mode, caller);
}

Result<wire::Entry> HostProvider::mkdir(NodeId parent, std::string_view name, std::uint32_t mode,
                                        const Caller& caller) {
  if (int e = name_error(name)) return fail(e);
  auto dir = open_parent(parent);
  if (!dir) return fail(dir.error());
  if (auto room = check_room(parent, name); !room) return fail(room.error());
  std::string n(name);
  // Owner-only until its owner and mode are the guest's.
  if (::mkdirat(dir->get(), n.c_str(), 0700) != 0) return fail(last_error());
  auto fd = open_beneath(dir->get(), n, O_RDONLY | O_DIRECTORY);
  if (!fd) {
    ::unlinkat(dir->get(), n.c_str(), AT_REMOVEDIR);
    return fail(fd.error());
  }
  return finish_new(parent, dir->get(), name, *fd, mode, caller);
}

Result<wire::Entry> HostProvider::symlink(NodeId parent, std::string_view name, std::string_view target,
                                          const Caller& caller) {
  if (int e = name_error(name)) return fail(e);
  if (target.empty() || target.find('\0') != std::string_view::npos) return fail(EINVAL);
  if (target.size() > wire::kMaxPath) return fail(ENAMETOOLONG);
  auto dir = open_parent(parent);
  if (!dir) return fail(dir.error());
  if (auto room = check_room(parent, name); !room) return fail(room.error());
  std::string n(name);
  // The target is only text to the host: nothing here ever follows it.
  if (::symlinkat(std::string(target).c_str(), dir->get(), n.c_str()) != 0) return fail(last_error());
  auto fd = open_beneath(dir->get(), n, O_PATH);
  if (!fd) {
    ::unlinkat(dir->get(), n.c_str(), 0);
    return fail(fd.error());
  }
  return finish_new(parent, dir->get(), name, *fd, std::nullopt, caller);
}

Result<wire::Entry> HostProvider::link(NodeId node, NodeId new_parent, std::string_view new_name) {
  if (int e = name_error(new_name)) return fail(e);
  if (node == wire::kRootNode) return fail(EPERM);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.detached) return fail(ENOENT);
  // linkat of the node's own descriptor (AT_EMPTY_PATH) needs a privilege;
  // its parent and name do not.
  auto from_dir = open_parent(it->second.parent);
  if (!from_dir) return fail(from_dir.error());
  auto to_dir = open_parent(new_parent);
  if (!to_dir) return fail(to_dir.error());
  if (auto room = check_room(new_parent, new_name); !room) return fail(room.error());
  std::string n(new_name);
  if (::linkat(from_dir->get(), it->second.name.c_str(), to_dir->get(), n.c_str(), 0) != 0) return fail(last_error());
  auto fd = open_beneath(to_dir->get(), n, O_PATH);
  if (!fd) return fail(fd.error());
  auto st = stat_fd(fd->get());
  if (!st) return fail(st.error());
  auto id = remember(new_parent, new_name, *st);
  if (!id) return fail(id.error());
  return entry_of(*id, *st);
}

Result<void> HostProvider::unlink(NodeId parent, std::string_view name) {
  if (int e = name_error(name)) return fail(e);
  auto dir = open_parent(parent);
  if (!dir) return fail(dir.error());
  if (::unlinkat(dir->get(), std::string(name).c_str(), 0) != 0) return fail(last_error());
  if (auto gone = child(parent, name)) detach(*gone);
  return {};
}

Result<void> HostProvider::rmdir(NodeId parent, std::string_view name) {
  if (int e = name_error(name)) return fail(e);
  auto dir = open_parent(parent);
  if (!dir) return fail(dir.error());
  if (::unlinkat(dir->get(), std::string(name).c_str(), AT_REMOVEDIR) != 0) return fail(last_error());
  if (auto gone = child(parent, name)) detach(*gone);
  return {};
}

Result<void> HostProvider::rename(NodeId parent, std::string_view name, NodeId new_parent, std::string_view new_name,
                                  std::uint32_t flags) {
  if (int e = name_error(name)) return fail(e);
  if (int e = name_error(new_name)) return fail(e);
  if ((flags & ~std::uint32_t{RENAME_NOREPLACE | RENAME_EXCHANGE}) != 0) return fail(EINVAL);
  if (flags == (RENAME_NOREPLACE | RENAME_EXCHANGE)) return fail(EINVAL);
  auto from_dir = open_parent(parent);
  if (!from_dir) return fail(from_dir.error());
  auto to_dir = open_parent(new_parent);
  if (!to_dir) return fail(to_dir.error());
  std::string from(name), to(new_name);
  // rename(2) of one name onto another of the same file does nothing: both
  // stay, and so must their nodes.
  struct ::stat a {};
  struct ::stat b {};
  bool same_file = ::fstatat(from_dir->get(), from.c_str(), &a, AT_SYMLINK_NOFOLLOW) == 0 &&
                   ::fstatat(to_dir->get(), to.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
                   a.st_ino == b.st_ino;
  if (::renameat2(from_dir->get(), from.c_str(), to_dir->get(), to.c_str(), flags) != 0) return fail(last_error());
  if (same_file && (flags & RENAME_EXCHANGE) == 0) return {};

  auto source = child(parent, name);
  auto target = child(new_parent, new_name);
  if (source && target && *source == *target) return {};
  if (source) unhook(*source);
  if (target) unhook(*target);
  if ((flags & RENAME_EXCHANGE) != 0) {
    if (source) hook(*source, new_parent, new_name);
    if (target) hook(*target, parent, name);
  } else {
    if (source) hook(*source, new_parent, new_name);
    if (target) nodes_.at(*target).parent = 0;
  }
  if (target) prune(*target);
  prune(parent);
  prune(new_parent);
  return {};
}

// ---- open files -----------------------------------------------------------

Result<void> HostProvider::check_handle_room() const {
  if (handles_.size() >= options_.max_handles) return fail(EMFILE);
  return {};
}

Handle HostProvider::add_handle(OpenHandle handle) {
  Handle id = next_handle_++;
  handles_.emplace(id, std::move(handle));
  return id;
}

Result<HostProvider::FileHandle*> HostProvider::file_handle(NodeId node, Handle handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end()) return fail(EBADF);
  auto* file = std::get_if<FileHandle>(&it->second);
  if (file == nullptr || file->node != node) return fail(EBADF);
  return file;
}

Result<HostProvider::DirHandle*> HostProvider::dir_handle(NodeId node, Handle handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end()) return fail(EBADF);
  auto* dir = std::get_if<DirHandle>(&it->second);
  if (dir == nullptr || dir->node != node) return fail(EBADF);
  return dir;
}

Result<wire::OpenFile> HostProvider::open(NodeId node, std::uint32_t flags) {
  if (auto room = check_handle_room(); !room) return fail(room.error());
  auto path = path_of(node);
  if (!path) return fail(path.error());
  // create() makes files; here O_CREAT and O_EXCL mean nothing.
  auto fd = open_regular(root_.get(), *path, flags & ~std::uint32_t{O_CREAT | O_EXCL}, false);
  if (!fd) return fail(fd.error());
  if (auto same = check_same(node, fd->get()); !same) return fail(same.error());
  int access_mode = static_cast<int>(flags & O_ACCMODE);
  wire::OpenFile out;
  out.handle = add_handle(FileHandle{node, std::move(fd).value(), access_mode});
  return out;
}

Result<Created> HostProvider::create(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t flags,
                                     const Caller& caller) {
  if (int e = name_error(name)) return fail(e);
  if (auto room = check_handle_room(); !room) return fail(room.error());
  auto dir = open_parent(parent);
  if (!dir) return fail(dir.error());
  if (auto room = check_room(parent, name); !room) return fail(room.error());
  std::string n(name);
  std::uint32_t open_flags = flags & ~std::uint32_t{O_CREAT | O_EXCL};
  Result<wire::Entry> entry = fail(EIO);
  auto fd = open_regular(dir->get(), n, open_flags, true);
  if (fd) {
    entry = finish_new(parent, dir->get(), name, *fd, mode, caller);
  } else if (fd.error() == EEXIST && (flags & O_EXCL) == 0) {
    // It appeared since the guest looked: open it as it is, as open(2)
    // without O_EXCL would.
    fd = open_regular(dir->get(), n, open_flags, false);
    if (!fd) return fail(fd.error());
    auto st = stat_fd(fd->get());
    if (!st) return fail(st.error());
    auto node = remember(parent, name, *st);
    if (!node) return fail(node.error());
    entry = entry_of(*node, *st);
  } else {
    return fail(fd.error());
  }
  if (!entry) return fail(entry.error());
  Created out;
  out.entry = *entry;
  out.open.handle = add_handle(FileHandle{entry->node, std::move(fd).value(), static_cast<int>(flags & O_ACCMODE)});
  return out;
}

Result<Bytes> HostProvider::read(NodeId node, Handle handle, std::uint64_t offset, std::uint32_t size) {
  auto h = file_handle(node, handle);
  if (!h) return fail(h.error());
  if (!fits_off_t(offset)) return fail(EINVAL);
  Bytes out(std::min(size, wire::kMaxData));
  std::size_t done = 0;
  while (done < out.size()) {
    std::uint64_t at = offset + done;
    if (!fits_off_t(at)) break;
    ssize_t n = ::pread((*h)->fd.get(), out.data() + done, out.size() - done, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(last_error());
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

Result<std::uint32_t> HostProvider::write(NodeId node, Handle handle, std::uint64_t offset, ByteSpan data) {
  auto h = file_handle(node, handle);
  if (!h) return fail(h.error());
  if (data.size() > wire::kMaxData) return fail(EINVAL);
  if (!fits_off_t(offset) || !fits_off_t(offset + data.size())) return fail(EFBIG);
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite((*h)->fd.get(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (done > 0) break;  // what was written stays written; report that much
      return fail(last_error());
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return static_cast<std::uint32_t>(done);
}

Result<void> HostProvider::flush(NodeId node, Handle handle) {
  // Every write already went to the host file; nothing is buffered here.
  auto h = file_handle(node, handle);
  if (!h) return fail(h.error());
  return {};
}

Result<void> HostProvider::release(NodeId node, Handle handle) {
  auto h = file_handle(node, handle);
  if (!h) return fail(h.error());
  handles_.erase(handle);
  return {};
}

Result<void> HostProvider::fsync(NodeId node, Handle handle, bool datasync) {
  auto h = file_handle(node, handle);
  if (!h) return fail(h.error());
  int fd = (*h)->fd.get();
  if ((datasync ? ::fdatasync(fd) : ::fsync(fd)) != 0) return fail(last_error());
  return {};
}

Result<void> HostProvider::fallocate(NodeId node, Handle handle, std::uint32_t mode, std::uint64_t offset,
                                     std::uint64_t length) {
  auto h = file_handle(node, handle);
  if (!h) return fail(h.error());
  if (!fits_off_t(offset) || !fits_off_t(length) || !fits_off_t(offset + length)) return fail(EFBIG);
  // Every mode acts on this one file only, so the host kernel may judge it.
  if (::fallocate((*h)->fd.get(), static_cast<int>(mode), static_cast<off_t>(offset), static_cast<off_t>(length)) != 0)
    return fail(last_error());
  return {};
}

// ---- directories ----------------------------------------------------------

Result<wire::OpenFile> HostProvider::opendir(NodeId node) {
  if (auto room = check_handle_room(); !room) return fail(room.error());
  auto fd = open_node(node, O_RDONLY | O_DIRECTORY);
  if (!fd) return fail(fd.error());
  // fdopendir takes the descriptor over: give it a copy.
  int copy = ::fcntl(fd->get(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return fail(last_error());
  DIR* stream = ::fdopendir(copy);
  if (stream == nullptr) {
    int error = last_error();
    ::close(copy);
    return fail(error);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(stream, ::closedir);
  DirHandle listing{node, {}};
  for (;;) {
    errno = 0;
    const struct ::dirent* d = ::readdir(stream);
    if (d == nullptr) {
      if (errno != 0) return fail(errno);
      break;
    }
    // The protocol has no "." and ".." entries; the guest's kernel knows them.
    std::string_view name = d->d_name;
    if (name == "." || name == "..") continue;
    if (listed_entries_ + listing.entries.size() >= options_.max_listed_entries) return fail(ENOMEM);
    std::uint32_t type = d->d_type == DT_UNKNOWN ? 0 : static_cast<std::uint32_t>(DTTOIF(d->d_type));
    if (type == 0) {
      struct ::stat st {};
      if (::fstatat(fd->get(), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) type = st.st_mode & S_IFMT;
    }
    listing.entries.push_back({std::string(name), type, static_cast<std::uint64_t>(d->d_ino)});
  }
  listed_entries_ += listing.entries.size();
  wire::OpenFile out;
  out.handle = add_handle(std::move(listing));
  return out;
}

Result<std::vector<wire::DirEntry>> HostProvider::readdir(NodeId node, Handle handle, std::uint64_t offset,
                                                          std::uint32_t size) {
  auto h = dir_handle(node, handle);
  if (!h) return fail(h.error());
  const auto& entries = (*h)->entries;
  std::vector<wire::DirEntry> out;
  std::uint64_t used = 0;
  for (std::uint64_t i = offset; i < entries.size() && out.size() < wire::kMaxDirEntries; ++i) {
    const DirListing& listed = entries[static_cast<std::size_t>(i)];
    used += dirent_size(listed.name);
    if (used > size) break;
    wire::DirEntry e;
    e.ino = listed.ino;
    e.next_offset = i + 1;
    e.type = listed.type;
    e.name = listed.name;
    out.push_back(std::move(e));
  }
  // An empty answer means the end; a budget too small for one entry is not.
  if (out.empty() && offset < entries.size()) return fail(EINVAL);
  return out;
}

Result<void> HostProvider::releasedir(NodeId node, Handle handle) {
  auto h = dir_handle(node, handle);
  if (!h) return fail(h.error());
  listed_entries_ -= (*h)->entries.size();
  handles_.erase(handle);
  return {};
}

}  // namespace sandboxd::vfs
