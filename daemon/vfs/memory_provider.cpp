#include "daemon/vfs/memory_provider.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <limits>
#include <set>

#include "protocol/fs_codec.hpp"

namespace sandboxd::vfs {

namespace {

constexpr std::uint32_t kSetIdBits = S_ISUID | S_ISGID;
constexpr std::uint32_t kBlockSize = 4096;
// The largest file offset a guest may name (off_t's range).
constexpr std::uint64_t kMaxOffset = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

int name_error(std::string_view name) {
  if (name.size() > wire::kMaxName) return ENAMETOOLONG;
  return wire::valid_name(name) ? 0 : EINVAL;
}

bool is_dir(const auto& node) { return (node.mode & S_IFMT) == S_IFDIR; }

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    std::size_t slash = path.find('/', start);
    parts.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

}  // namespace

MemoryProvider::MemoryProvider(Options options) : options_(std::move(options)) {
  Node root;
  root.mode = S_IFDIR | 0755;
  root.uid = options_.uid;
  root.gid = options_.gid;
  root.nlink = 2;
  root.parent = wire::kRootNode;
  root.atime = root.mtime = root.ctime = now();
  nodes_.emplace(wire::kRootNode, std::move(root));
}

Expected<std::unique_ptr<MemoryProvider>, std::string> MemoryProvider::create(const std::vector<MemoryFile>& files,
                                                                              Options options) {
  std::unique_ptr<MemoryProvider> fs(new MemoryProvider(std::move(options)));
  Caller owner{fs->options_.uid, fs->options_.gid, 0};
  // Directories listed explicitly, so that listing one twice is an error
  // while a directory made for a deeper path may still be listed later.
  std::set<NodeId> listed;
  auto refuse = [](const MemoryFile& file, const char* why) {
    return Unexpected<std::string>{"initial file \"" + file.path + "\": " + why};
  };
  for (const MemoryFile& file : files) {
    if (file.path.empty() || file.path.front() == '/') return refuse(file, "not a relative path");
    std::uint32_t type = file.mode & S_IFMT;
    if (type != 0 && type != S_IFREG && type != S_IFDIR && type != S_IFLNK)
      return refuse(file, "only files, directories and symlinks can be listed");
    if (type == S_IFDIR && !file.contents.empty()) return refuse(file, "a directory has no contents");
    if (type == S_IFLNK && (file.contents.empty() || file.contents.size() > wire::kMaxPath ||
                            file.contents.find('\0') != std::string::npos))
      return refuse(file, "not a valid symlink target");
    auto parts = split_path(file.path);
    for (auto part : parts)
      if (!wire::valid_name(part)) return refuse(file, "a component is not a valid name");
    NodeId dir = wire::kRootNode;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      Node& d = fs->nodes_.at(dir);
      auto it = d.entries.find(parts[i]);
      if (it != d.entries.end()) {
        if (!is_dir(fs->nodes_.at(it->second.node))) return refuse(file, "lies under a non-directory");
        dir = it->second.node;
        continue;
      }
      auto made = fs->add_node(dir, parts[i], S_IFDIR | 0755, owner);
      if (!made) return refuse(file, "does not fit the node budget");
      fs->nodes_.at(*made).lookups = 0;
      dir = *made;
    }
    std::string_view last = parts.back();
    Node& d = fs->nodes_.at(dir);
    if (auto it = d.entries.find(last); it != d.entries.end()) {
      NodeId existing = it->second.node;
      bool implicit_dir = is_dir(fs->nodes_.at(existing)) && listed.count(existing) == 0;
      if (type != S_IFDIR || !implicit_dir) return refuse(file, "listed twice");
      fs->nodes_.at(existing).mode = S_IFDIR | (file.mode & 07777);
      listed.insert(existing);
      continue;
    }
    std::uint32_t mode = (type == 0 ? S_IFREG : type) | (file.mode & 07777);
    if (type == S_IFLNK) {
      if (fs->used_bytes_ + file.contents.size() > fs->options_.capacity_bytes)
        return refuse(file, "does not fit the byte budget");
    }
    auto made = fs->add_node(dir, last, mode, owner);
    if (!made) return refuse(file, "does not fit the node budget");
    Node& n = fs->nodes_.at(*made);
    n.lookups = 0;
    if (type == S_IFLNK) {
      n.target = file.contents;
      fs->used_bytes_ += n.target.size();
    } else if (type == S_IFDIR) {
      listed.insert(*made);
    } else {
      if (!fs->resize(n, file.contents.size())) return refuse(file, "does not fit the byte budget");
      std::copy_n(as_bytes(file.contents).begin(), file.contents.size(), n.data.begin());
    }
  }
  return fs;
}

// ---- records --------------------------------------------------------------

wire::Timespec MemoryProvider::now() const {
  if (options_.clock) return options_.clock();
  struct ::timespec t {};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return {static_cast<std::int64_t>(t.tv_sec), static_cast<std::uint32_t>(t.tv_nsec)};
}

MemoryProvider::Node* MemoryProvider::find(NodeId node) {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? nullptr : &it->second;
}

Result<MemoryProvider::Node*> MemoryProvider::directory(NodeId node) {
  Node* n = find(node);
  if (n == nullptr) return fail(ENOENT);
  if (!is_dir(*n)) return fail(ENOTDIR);
  // A removed directory can hold nothing new.
  if (n->nlink == 0) return fail(ENOENT);
  return n;
}

wire::Attr MemoryProvider::attr_of(NodeId id, const Node& node) const {
  wire::Attr a;
  a.ino = id;
  switch (node.mode & S_IFMT) {
    case S_IFREG:
      a.size = node.data.size();
      break;
    case S_IFLNK:
      a.size = node.target.size();
      break;
    // What tmpfs reports: a nominal 20 bytes per entry.
    case S_IFDIR:
      a.size = (node.entries.size() + 2) * 20;
      break;
    default:
      a.size = 0;
      break;
  }
  a.blocks = (a.size + 511) / 512;
  a.atime = node.atime;
  a.mtime = node.mtime;
  a.ctime = node.ctime;
  a.mode = node.mode;
  a.nlink = node.nlink;
  a.uid = node.uid;
  a.gid = node.gid;
  a.blksize = kBlockSize;
  return a;
}

wire::Entry MemoryProvider::entry_of(NodeId id, const Node& node) const {
  wire::Entry e;
  e.node = id;
  e.attr = attr_of(id, node);
  e.entry_timeout_ms = options_.entry_timeout_ms;
  e.attr_timeout_ms = options_.attr_timeout_ms;
  return e;
}

Result<NodeId> MemoryProvider::add_node(NodeId parent, std::string_view name, std::uint32_t mode,
                                        const Caller& caller) {
  if (int e = name_error(name)) return fail(e);
  auto dir = directory(parent);
  if (!dir) return fail(dir.error());
  if ((*dir)->entries.count(name) != 0) return fail(EEXIST);
  if (nodes_.size() >= options_.max_nodes) return fail(ENOSPC);
  bool makes_dir = (mode & S_IFMT) == S_IFDIR;
  if (makes_dir && (*dir)->nlink == std::numeric_limits<std::uint32_t>::max()) return fail(EMLINK);
  NodeId id = next_node_++;
  Node n;
  n.mode = mode;
  n.uid = caller.uid;
  n.gid = caller.gid;
  n.atime = n.mtime = n.ctime = now();
  n.lookups = 1;
  if (makes_dir) {
    n.nlink = 2;
    n.parent = parent;
    ++(*dir)->nlink;
  } else {
    n.nlink = 1;
  }
  nodes_.emplace(id, std::move(n));  // references to other records stay valid
  add_entry(**dir, name, id);
  return id;
}

void MemoryProvider::add_entry(Node& dir, std::string_view name, NodeId id) {
  std::uint64_t cookie = dir.next_cookie++;
  auto [it, inserted] = dir.entries.emplace(std::string(name), Slot{id, cookie});
  dir.by_cookie.emplace(cookie, std::string_view(it->first));
  dir.mtime = dir.ctime = now();
}

void MemoryProvider::remove_entry(Node& dir, std::string_view name) {
  auto it = dir.entries.find(name);
  if (it == dir.entries.end()) return;
  dir.by_cookie.erase(it->second.cookie);
  dir.entries.erase(it);
  dir.mtime = dir.ctime = now();
}

void MemoryProvider::maybe_free(NodeId id) {
  if (id == wire::kRootNode) return;
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  const Node& n = it->second;
  if (n.nlink != 0 || n.handles != 0 || n.lookups != 0) return;
  used_bytes_ -= n.data.size() + n.target.size();
  nodes_.erase(it);
}

bool MemoryProvider::is_within(NodeId id, NodeId ancestor) const {
  // Parents of live directories form a tree rooted at the root, so this
  // ends; the bound is for safety only.
  for (std::size_t steps = 0; steps <= nodes_.size(); ++steps) {
    if (id == ancestor) return true;
    if (id == wire::kRootNode) return false;
    auto it = nodes_.find(id);
    if (it == nodes_.end()) return false;
    id = it->second.parent;
  }
  return false;
}

Result<void> MemoryProvider::resize(Node& node, std::uint64_t size) {
  std::uint64_t old = node.data.size();
  if (size > old && size - old > options_.capacity_bytes - std::min(used_bytes_, options_.capacity_bytes))
    return fail(ENOSPC);
  node.data.resize(static_cast<std::size_t>(size));
  used_bytes_ = used_bytes_ - old + size;
  return {};
}

Result<MemoryProvider::OpenHandle*> MemoryProvider::handle_of(NodeId node, Handle handle, bool dir) {
  auto it = handles_.find(handle);
  if (it == handles_.end() || it->second.node != node || it->second.directory != dir) return fail(EBADF);
  return &it->second;
}

// ---- lookups and attributes -----------------------------------------------

Result<MemoryProvider::Child> MemoryProvider::child_of(NodeId parent, std::string_view name) {
  if (int e = name_error(name)) return fail(e);
  auto dir = directory(parent);
  if (!dir) return fail(dir.error());
  auto it = (*dir)->entries.find(name);
  if (it == (*dir)->entries.end()) return fail(ENOENT);
  return Child{*dir, it->second.node, &nodes_.at(it->second.node)};
}

Result<wire::Entry> MemoryProvider::lookup(NodeId parent, std::string_view name) {
  auto child = child_of(parent, name);
  if (!child) return fail(child.error());
  ++child->node->lookups;
  return entry_of(child->id, *child->node);
}

void MemoryProvider::forget(NodeId node, std::uint64_t nlookup) {
  Node* n = find(node);
  if (n == nullptr || node == wire::kRootNode) return;
  n->lookups -= std::min(nlookup, n->lookups);
  maybe_free(node);
}

Result<wire::Attr> MemoryProvider::getattr(NodeId node, Handle handle) {
  Node* n = find(node);
  if (n == nullptr) return fail(ENOENT);
  if (handle != wire::kNoHandle) {
    if (auto h = handle_of(node, handle, is_dir(*n)); !h) return fail(h.error());
  }
  return attr_of(node, *n);
}

Result<wire::Attr> MemoryProvider::setattr(NodeId node, const wire::Request& request, const Caller&) {
  Node* n = find(node);
  if (n == nullptr) return fail(ENOENT);
  if (request.handle != wire::kNoHandle) {
    if (auto h = handle_of(node, request.handle, is_dir(*n)); !h) return fail(h.error());
  }
  std::uint32_t set = request.set;
  wire::Timespec t = now();
  if ((set & wire::kSetSize) != 0) {
    if (is_dir(*n)) return fail(EISDIR);
    if ((n->mode & S_IFMT) != S_IFREG) return fail(EINVAL);
    if (request.size_to > kMaxOffset) return fail(EFBIG);
    if (auto r = resize(*n, request.size_to); !r) return fail(r.error());
    n->mtime = t;
  }
  if ((set & wire::kSetMode) != 0) n->mode = (n->mode & S_IFMT) | (request.mode & 07777 & ~kSetIdBits);
  if ((set & wire::kSetUid) != 0) n->uid = request.uid_to;
  if ((set & wire::kSetGid) != 0) n->gid = request.gid_to;
  auto valid = [](const wire::Timespec& v) {
    return wire::Timespec{v.sec, std::min<std::uint32_t>(v.nsec, 999'999'999)};
  };
  if ((set & wire::kSetAtimeNow) != 0) {
    n->atime = t;
  } else if ((set & wire::kSetAtime) != 0) {
    n->atime = valid(request.atime_to);
  }
  if ((set & wire::kSetMtimeNow) != 0) {
    n->mtime = t;
  } else if ((set & wire::kSetMtime) != 0) {
    n->mtime = valid(request.mtime_to);
  }
  if ((set & wire::kSetattrMask) != 0) n->ctime = t;
  return attr_of(node, *n);
}

Result<std::string> MemoryProvider::readlink(NodeId node) {
  Node* n = find(node);
  if (n == nullptr) return fail(ENOENT);
  if ((n->mode & S_IFMT) != S_IFLNK) return fail(EINVAL);
  return n->target;
}

Result<void> MemoryProvider::access(NodeId node, std::uint32_t, const Caller&) {
  // The guest kernel checks permissions (default_permissions).
  if (find(node) == nullptr) return fail(ENOENT);
  return {};
}

Result<wire::StatFs> MemoryProvider::statfs(NodeId) {
  wire::StatFs s;
  s.block_size = s.fragment_size = kBlockSize;
  s.blocks = options_.capacity_bytes / kBlockSize;
  std::uint64_t free_bytes = options_.capacity_bytes - std::min(used_bytes_, options_.capacity_bytes);
  s.blocks_free = s.blocks_available = free_bytes / kBlockSize;
  s.files = options_.max_nodes;
  s.files_free = options_.max_nodes - std::min<std::uint64_t>(nodes_.size(), options_.max_nodes);
  s.name_max = wire::kMaxName;
  return s;
}

// ---- making and removing names ---------------------------------------------

Result<wire::Entry> MemoryProvider::mknod(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t,
                                          const Caller& caller) {
  std::uint32_t type = mode & S_IFMT;
  if (type != 0 && type != S_IFREG && type != S_IFIFO) return fail(EPERM);
  auto id = add_node(parent, name, (type == 0 ? S_IFREG : type) | (mode & 07777 & ~kSetIdBits), caller);
  if (!id) return fail(id.error());
  return entry_of(*id, nodes_.at(*id));
}

Result<wire::Entry> MemoryProvider::mkdir(NodeId parent, std::string_view name, std::uint32_t mode,
                                          const Caller& caller) {
  auto id = add_node(parent, name, S_IFDIR | (mode & 07777 & ~kSetIdBits), caller);
  if (!id) return fail(id.error());
  return entry_of(*id, nodes_.at(*id));
}

Result<wire::Entry> MemoryProvider::symlink(NodeId parent, std::string_view name, std::string_view target,
                                            const Caller& caller) {
  if (target.empty() || target.find('\0') != std::string_view::npos) return fail(EINVAL);
  if (target.size() > wire::kMaxPath) return fail(ENAMETOOLONG);
  if (target.size() > options_.capacity_bytes - std::min(used_bytes_, options_.capacity_bytes)) return fail(ENOSPC);
  auto id = add_node(parent, name, S_IFLNK | 0777, caller);
  if (!id) return fail(id.error());
  Node& n = nodes_.at(*id);
  n.target = std::string(target);
  used_bytes_ += n.target.size();
  return entry_of(*id, n);
}

Result<wire::Entry> MemoryProvider::link(NodeId node, NodeId new_parent, std::string_view new_name) {
  if (int e = name_error(new_name)) return fail(e);
  Node* n = find(node);
  if (n == nullptr) return fail(ENOENT);
  if (is_dir(*n)) return fail(EPERM);
  if (n->nlink == 0) return fail(ENOENT);
  if (n->nlink == std::numeric_limits<std::uint32_t>::max()) return fail(EMLINK);
  auto dir = directory(new_parent);
  if (!dir) return fail(dir.error());
  if ((*dir)->entries.count(new_name) != 0) return fail(EEXIST);
  add_entry(**dir, new_name, node);
  ++n->nlink;
  ++n->lookups;
  n->ctime = now();
  return entry_of(node, *n);
}

Result<void> MemoryProvider::unlink(NodeId parent, std::string_view name) {
  auto child = child_of(parent, name);
  if (!child) return fail(child.error());
  Node& n = *child->node;
  if (is_dir(n)) return fail(EISDIR);
  remove_entry(*child->dir, name);
  --n.nlink;
  n.ctime = now();
  maybe_free(child->id);
  return {};
}

Result<void> MemoryProvider::rmdir(NodeId parent, std::string_view name) {
  auto child = child_of(parent, name);
  if (!child) return fail(child.error());
  Node& n = *child->node;
  if (!is_dir(n)) return fail(ENOTDIR);
  if (!n.entries.empty()) return fail(ENOTEMPTY);
  remove_entry(*child->dir, name);
  --child->dir->nlink;
  n.nlink = 0;
  n.ctime = now();
  maybe_free(child->id);
  return {};
}

Result<void> MemoryProvider::rename(NodeId parent, std::string_view name, NodeId new_parent, std::string_view new_name,
                                    std::uint32_t flags) {
  if (int e = name_error(name)) return fail(e);
  if (int e = name_error(new_name)) return fail(e);
  if ((flags & ~std::uint32_t{RENAME_NOREPLACE | RENAME_EXCHANGE}) != 0) return fail(EINVAL);
  if (flags == (RENAME_NOREPLACE | RENAME_EXCHANGE)) return fail(EINVAL);
  bool exchange = (flags & RENAME_EXCHANGE) != 0;
  auto from_dir = directory(parent);
  if (!from_dir) return fail(from_dir.error());
  auto to_dir = directory(new_parent);
  if (!to_dir) return fail(to_dir.error());
  Node& from = **from_dir;
  Node& to = **to_dir;
  auto source_it = from.entries.find(name);
  if (source_it == from.entries.end()) return fail(ENOENT);
  NodeId source = source_it->second.node;
  auto target_it = to.entries.find(new_name);
  std::optional<NodeId> target;
  if (target_it != to.entries.end()) target = target_it->second.node;
  if (target && (flags & RENAME_NOREPLACE) != 0) return fail(EEXIST);
  if (!target && exchange) return fail(ENOENT);
  // Two names of one file: rename(2) does nothing.
  if (target && *target == source) return {};
  Node& s = nodes_.at(source);
  bool source_dir = is_dir(s);
  // A directory may not move below itself.
  if (source_dir && is_within(new_parent, source)) return fail(EINVAL);
  bool target_dir = target && is_dir(nodes_.at(*target));
  if (exchange && target_dir && is_within(parent, *target)) return fail(EINVAL);
  wire::Timespec t = now();

  if (exchange) {
    Node& other = nodes_.at(*target);
    source_it->second.node = *target;
    target_it->second.node = source;
    if (source_dir) s.parent = new_parent;
    if (target_dir) other.parent = parent;
    if (parent != new_parent && source_dir != target_dir) {
      // The directory among the two moved from one parent to the other.
      Node& gains = source_dir ? to : from;
      Node& loses = source_dir ? from : to;
      ++gains.nlink;
      --loses.nlink;
    }
    from.mtime = from.ctime = to.mtime = to.ctime = t;
    s.ctime = other.ctime = t;
    return {};
  }

  if (target) {
    Node& old = nodes_.at(*target);
    if (source_dir && !target_dir) return fail(ENOTDIR);
    if (!source_dir && target_dir) return fail(EISDIR);
    if (target_dir && !old.entries.empty()) return fail(ENOTEMPTY);
    remove_entry(to, new_name);
    if (target_dir) {
      --to.nlink;
      old.nlink = 0;
    } else {
      --old.nlink;
    }
    old.ctime = t;
  } else if (source_dir && parent != new_parent && to.nlink == std::numeric_limits<std::uint32_t>::max()) {
    return fail(EMLINK);
  }
  remove_entry(from, name);
  add_entry(to, new_name, source);
  if (source_dir) {
    s.parent = new_parent;
    if (parent != new_parent) {
      --from.nlink;
      ++to.nlink;
    }
  }
  s.ctime = t;
  if (target) maybe_free(*target);
  return {};
}

// ---- open files -----------------------------------------------------------

Result<wire::OpenFile> MemoryProvider::open(NodeId node, std::uint32_t flags) {
  Node* n = find(node);
  if (n == nullptr) return fail(ENOENT);
  switch (n->mode & S_IFMT) {
    case S_IFREG:
      break;
    case S_IFDIR:
      return fail(EISDIR);
    case S_IFLNK:
      return fail(ELOOP);
    default:
      return fail(ENXIO);
  }
  if ((flags & (O_PATH | O_DIRECTORY)) != 0 || (flags & O_ACCMODE) == O_ACCMODE) return fail(EINVAL);
  if (handles_.size() >= options_.max_handles) return fail(EMFILE);
  if ((flags & O_TRUNC) != 0 && !n->data.empty()) {
    if (auto r = resize(*n, 0); !r) return fail(r.error());
    n->mtime = n->ctime = now();
  }
  Handle id = next_handle_++;
  handles_.emplace(id, OpenHandle{node, false, static_cast<int>(flags & O_ACCMODE), (flags & O_APPEND) != 0});
  ++n->handles;
  wire::OpenFile out;
  out.handle = id;
  // The guest is the only writer, so what it cached is still right.
  out.keep_cache = true;
  return out;
}

Result<Created> MemoryProvider::create(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t flags,
                                       const Caller& caller) {
  if (int e = name_error(name)) return fail(e);
  if ((flags & (O_PATH | O_DIRECTORY)) != 0 || (flags & O_ACCMODE) == O_ACCMODE) return fail(EINVAL);
  if (handles_.size() >= options_.max_handles) return fail(EMFILE);
  auto dir = directory(parent);
  if (!dir) return fail(dir.error());
  std::uint32_t open_flags = flags & ~std::uint32_t{O_CREAT | O_EXCL};
  NodeId id = 0;
  if (auto it = (*dir)->entries.find(name); it != (*dir)->entries.end()) {
    if ((flags & O_EXCL) != 0) return fail(EEXIST);
    id = it->second.node;
    auto opened = open(id, open_flags);
    if (!opened) return fail(opened.error());
    Node& n = nodes_.at(id);
    ++n.lookups;
    return Created{entry_of(id, n), *opened};
  }
  auto made = add_node(parent, name, S_IFREG | (mode & 07777 & ~kSetIdBits), caller);
  if (!made) return fail(made.error());
  id = *made;
  auto opened = open(id, open_flags);
  if (!opened) {
    // Cannot happen after the checks above; undo rather than leak.
    (void)unlink(parent, name);
    forget(id, 1);
    return fail(opened.error());
  }
  return Created{entry_of(id, nodes_.at(id)), *opened};
}

Result<Bytes> MemoryProvider::read(NodeId node, Handle handle, std::uint64_t offset, std::uint32_t size) {
  auto h = handle_of(node, handle, false);
  if (!h) return fail(h.error());
  if ((*h)->access == O_WRONLY) return fail(EBADF);
  const Node& n = nodes_.at(node);
  if (offset >= n.data.size()) return Bytes{};
  std::size_t begin = static_cast<std::size_t>(offset);
  std::size_t count = std::min<std::size_t>(std::min(size, wire::kMaxData), n.data.size() - begin);
  auto first = n.data.begin() + static_cast<std::ptrdiff_t>(begin);
  return Bytes(first, first + static_cast<std::ptrdiff_t>(count));
}

Result<std::uint32_t> MemoryProvider::write(NodeId node, Handle handle, std::uint64_t offset, ByteSpan data) {
  auto h = handle_of(node, handle, false);
  if (!h) return fail(h.error());
  if ((*h)->access == O_RDONLY) return fail(EBADF);
  if (data.size() > wire::kMaxData) return fail(EINVAL);
  Node& n = nodes_.at(node);
  if ((*h)->append) offset = n.data.size();
  if (offset > kMaxOffset || data.size() > kMaxOffset - offset) return fail(EFBIG);
  std::size_t count = data.size();
  if (count == 0) return 0u;
  std::uint64_t end = offset + count;
  if (end > n.data.size()) {
    // As much as the budget still allows; nothing at all is ENOSPC.
    std::uint64_t room = options_.capacity_bytes - std::min(used_bytes_, options_.capacity_bytes);
    std::uint64_t limit = n.data.size() + room;
    if (offset >= limit) return fail(ENOSPC);
    end = std::min(end, limit);
    count = static_cast<std::size_t>(end - offset);
    if (auto r = resize(n, end); !r) return fail(r.error());
  }
  std::copy_n(data.begin(), count, n.data.begin() + static_cast<std::ptrdiff_t>(offset));
  n.mtime = n.ctime = now();
  return static_cast<std::uint32_t>(count);
}

Result<void> MemoryProvider::flush(NodeId node, Handle handle) {
  if (auto h = handle_of(node, handle, false); !h) return fail(h.error());
  return {};
}

Result<void> MemoryProvider::fsync(NodeId node, Handle handle, bool) {
  if (auto h = handle_of(node, handle, false); !h) return fail(h.error());
  return {};
}

Result<void> MemoryProvider::release(NodeId node, Handle handle) {
  if (auto h = handle_of(node, handle, false); !h) return fail(h.error());
  handles_.erase(handle);
  --nodes_.at(node).handles;
  maybe_free(node);
  return {};
}

Result<void> MemoryProvider::fallocate(NodeId node, Handle handle, std::uint32_t mode, std::uint64_t offset,
                                       std::uint64_t length) {
  auto h = handle_of(node, handle, false);
  if (!h) return fail(h.error());
  if ((*h)->access == O_RDONLY) return fail(EBADF);
  if (length == 0) return fail(EINVAL);
  if (offset > kMaxOffset || length > kMaxOffset - offset) return fail(EFBIG);
  Node& n = nodes_.at(node);
  std::uint64_t end = offset + length;
  if (mode == 0) {
    if (end > n.data.size()) {
      if (auto r = resize(n, end); !r) return fail(r.error());
      n.mtime = n.ctime = now();
    }
    return {};
  }
  // Nothing is preallocated here, so keeping the size is just a check.
  if (mode == FALLOC_FL_KEEP_SIZE) return {};
  if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
    if (offset < n.data.size()) {
      auto first = n.data.begin() + static_cast<std::ptrdiff_t>(offset);
      auto last = n.data.begin() + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(end, n.data.size()));
      std::fill(first, last, std::byte{0});
      n.mtime = n.ctime = now();
    }
    return {};
  }
  return fail(EOPNOTSUPP);
}

// ---- directories ----------------------------------------------------------

Result<wire::OpenFile> MemoryProvider::opendir(NodeId node) {
  Node* n = find(node);
  if (n == nullptr) return fail(ENOENT);
  if (!is_dir(*n)) return fail(ENOTDIR);
  if (handles_.size() >= options_.max_handles) return fail(EMFILE);
  Handle id = next_handle_++;
  handles_.emplace(id, OpenHandle{node, true, O_RDONLY, false});
  ++n->handles;
  wire::OpenFile out;
  out.handle = id;
  out.keep_cache = true;
  return out;
}

Result<std::vector<wire::DirEntry>> MemoryProvider::readdir(NodeId node, Handle handle, std::uint64_t offset,
                                                            std::uint32_t size) {
  auto h = handle_of(node, handle, true);
  if (!h) return fail(h.error());
  const Node& dir = nodes_.at(node);
  std::vector<wire::DirEntry> out;
  // A removed directory lists nothing.
  if (dir.nlink == 0) return out;
  std::uint64_t used = 0;
  // Adds one entry if it fits; false when the answer is full.
  auto add = [&](std::uint64_t cookie, NodeId ino, std::string_view name) {
    if (out.size() >= wire::kMaxDirEntries || used + dirent_size(name) > size) return false;
    used += dirent_size(name);
    auto it = nodes_.find(ino);
    std::uint32_t type = it != nodes_.end() ? (it->second.mode & S_IFMT) : 0;
    out.push_back(wire::DirEntry{ino, cookie, type, std::string(name)});
    return true;
  };
  bool full = false;
  for (auto it = dir.by_cookie.upper_bound(offset); !full && it != dir.by_cookie.end(); ++it)
    full = !add(it->first, dir.entries.find(it->second)->second.node, it->second);
  // An empty answer means the end; a budget too small for one entry is not.
  if (out.empty() && full) return fail(EINVAL);
  return out;
}

Result<void> MemoryProvider::releasedir(NodeId node, Handle handle) {
  if (auto h = handle_of(node, handle, true); !h) return fail(h.error());
  handles_.erase(handle);
  --nodes_.at(node).handles;
  maybe_free(node);
  return {};
}

void MemoryProvider::reset() {
  handles_.clear();
  std::vector<NodeId> ids;
  for (auto& [id, n] : nodes_) {
    n.lookups = 0;
    n.handles = 0;
    ids.push_back(id);
  }
  for (NodeId id : ids) maybe_free(id);
}

}  // namespace sandboxd::vfs
