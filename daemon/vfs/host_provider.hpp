// A provider that serves a directory of the host to the guest.
//
// Theory of operation
// -------------------
// The root is opened once, O_PATH|O_DIRECTORY, and everything the guest does
// happens beneath that descriptor. The guest names files by node number; the
// node table maps each number to {parent node, name, lookup count}, and the
// same (parent, name) always maps back to the same number, so a repeated
// lookup answers the node the kernel already knows. Numbers are never reused
// while the provider lives (a u64 counter), so a stale number held by a
// hostile guest names nothing rather than something else.
//
// A node becomes a descriptor only through openat2(2) of its path relative
// to the root, built by walking the table's parents, with RESOLVE_BENEATH,
// RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS and RESOLVE_NO_XDEV: the kernel,
// not this code, guarantees that no component is a symlink, a "..", a
// /proc magic link or a mount point. An operation on a name inside a
// directory resolves the directory that way (O_DIRECTORY, so a symlink put in
// its place fails) and then uses the *at call with the one validated name and
// without following it. Nothing is ever reopened through /proc/self/fd.
//
// So the table is a cache of where things were, and the host may change the
// tree behind it at any time: a path that no longer resolves is ENOENT (or
// ELOOP, ENOTDIR, EXDEV when something unsafe took its place), never an
// escape. Each node also remembers the host file (device and inode) it was
// found to be; a path that now leads to another file is ENOENT for the old
// node, and a lookup of the name makes a new node for the new file, so the
// guest's kernel never sees one node change into another file.
//
// The guest's own renames, unlinks and rmdirs keep the table right: a
// renamed node and its children follow it; a node unlinked or replaced by a
// rename is detached, and further operations on it by number are ENOENT,
// except through the handles already open on it, which are real host
// descriptors and keep working as they do for any unlinked file. Regular
// files are opened with the guest's access mode, O_APPEND, O_TRUNC and the
// sync flags, and never when they turn out not to be regular files (a FIFO
// would block the provider, a device would act).
//
// Mode and ownership: the set-user-ID and set-group-ID bits are stripped from
// every mode the guest sets, mknod makes only regular files and FIFOs, and
// modes are applied with fchmod on a descriptor of the new node so the
// daemon's umask does not change them. When the daemon is root, new nodes are
// given to the calling guest user and setattr may change owners; otherwise
// new nodes belong to the daemon and a change of owner is EPERM.
//
// Attributes and directory entries report the host's stat and inode
// numbers (the file system cannot be crossed, so they are unique): the names
// of a hard link are separate nodes but one file to stat(2). A directory handle holds
// a snapshot of the entries taken at opendir (without "." and "..", which
// the protocol does not carry), so offsets into it stay valid however the
// host changes the directory meanwhile.
//
// Bounded: the node table (max_nodes, then ENFILE), open handles
// (max_handles, then EMFILE) and the directory entries held by open
// directory snapshots (max_listed_entries, then ENOMEM).
//
// Not supported: extended attributes, file locks, ioctl, poll,
// copy_file_range, crossing mount points below the root (EXDEV), and hard
// links reported as one node (each name is its own node, as in a path-based
// FUSE file system).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "daemon/vfs/provider.hpp"

namespace sandboxd::vfs {

class HostProvider final : public Provider {
 public:
  struct Options {
    std::uint32_t entry_timeout_ms = 0;
    std::uint32_t attr_timeout_ms = 0;
    std::uint64_t max_nodes = 1'000'000;
    std::uint64_t max_handles = 4096;
    // Directory entries all open directory handles may hold together.
    std::uint64_t max_listed_entries = 1'000'000;
    // Whether new nodes go to the calling guest user and setattr may change
    // owners. Unset: when the daemon runs as root (it has to be, to chown).
    std::optional<bool> chown_to_caller;
  };

  // Opens `root` (a directory; symlinks in the path itself are followed,
  // since the operator chose it). Fails with an errno, ENOSYS when the kernel
  // has no openat2.
  static Result<std::unique_ptr<HostProvider>> open(const std::filesystem::path& root, Options options);
  ~HostProvider() override;
  HostProvider(const HostProvider&) = delete;
  HostProvider& operator=(const HostProvider&) = delete;

  Result<wire::Entry> lookup(NodeId parent, std::string_view name) override;
  void forget(NodeId node, std::uint64_t nlookup) override;
  Result<wire::Attr> getattr(NodeId node, Handle handle) override;
  Result<wire::Attr> setattr(NodeId node, const wire::Request& request, const Caller& caller) override;
  Result<std::string> readlink(NodeId node) override;
  Result<wire::Entry> mknod(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t rdev,
                            const Caller& caller) override;
  Result<wire::Entry> mkdir(NodeId parent, std::string_view name, std::uint32_t mode, const Caller& caller) override;
  Result<void> unlink(NodeId parent, std::string_view name) override;
  Result<void> rmdir(NodeId parent, std::string_view name) override;
  Result<wire::Entry> symlink(NodeId parent, std::string_view name, std::string_view target,
                              const Caller& caller) override;
  Result<void> rename(NodeId parent, std::string_view name, NodeId new_parent, std::string_view new_name,
                      std::uint32_t flags) override;
  Result<wire::Entry> link(NodeId node, NodeId new_parent, std::string_view new_name) override;
  Result<wire::OpenFile> open(NodeId node, std::uint32_t flags) override;
  Result<Created> create(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t flags,
                         const Caller& caller) override;
  Result<Bytes> read(NodeId node, Handle handle, std::uint64_t offset, std::uint32_t size) override;
  Result<std::uint32_t> write(NodeId node, Handle handle, std::uint64_t offset, ByteSpan data) override;
  Result<void> flush(NodeId node, Handle handle) override;
  Result<void> release(NodeId node, Handle handle) override;
  Result<void> fsync(NodeId node, Handle handle, bool datasync) override;
  Result<wire::OpenFile> opendir(NodeId node) override;
  Result<std::vector<wire::DirEntry>> readdir(NodeId node, Handle handle, std::uint64_t offset,
                                              std::uint32_t size) override;
  Result<void> releasedir(NodeId node, Handle handle) override;
  Result<wire::StatFs> statfs(NodeId node) override;
  Result<void> access(NodeId node, std::uint32_t mask, const Caller& caller) override;
  Result<void> fallocate(NodeId node, Handle handle, std::uint32_t mode, std::uint64_t offset,
                         std::uint64_t length) override;
  void reset() override;

  // For tests and diagnostics: nodes in the table (the root included) and
  // open handles.
  std::size_t node_count() const { return nodes_.size(); }
  std::size_t handle_count() const { return handles_.size(); }

 private:
  struct Node {
    NodeId parent = 0;  // 0 once detached (and for the root)
    std::string name;
    std::uint64_t lookups = 0;
    std::uint64_t children = 0;  // nodes whose parent this is: they keep it in the table
    bool detached = false;
    // The host file it was last seen to be: another file at its name is
    // another node.
    dev_t dev = 0;
    ino_t ino = 0;
  };
  struct ChildKey {
    NodeId parent;
    std::string_view name;
  };
  struct ChildLess {
    using is_transparent = void;
    bool operator()(const std::pair<NodeId, std::string>& a, const std::pair<NodeId, std::string>& b) const;
    bool operator()(const std::pair<NodeId, std::string>& a, const ChildKey& b) const;
    bool operator()(const ChildKey& a, const std::pair<NodeId, std::string>& b) const;
  };
  // A descriptor this object owns.
  class Fd {
   public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept;
    ~Fd();
    int get() const { return fd_; }

   private:
    int fd_ = -1;
  };
  struct FileHandle {
    NodeId node;
    Fd fd;
    int access;  // O_RDONLY, O_WRONLY or O_RDWR
  };
  struct DirListing {
    std::string name;
    std::uint32_t type;  // S_IFMT bits, 0 when unknown
    std::uint64_t ino;   // the host's
  };
  struct DirHandle {
    NodeId node;
    std::vector<DirListing> entries;  // the snapshot opendir took, without "." and ".."
  };
  using OpenHandle = std::variant<FileHandle, DirHandle>;

  HostProvider(Fd root, Options options);

  // The node's path relative to the root ("." for the root itself).
  Result<std::string> path_of(NodeId node) const;
  // openat2 of the node's path (flags: O_NOFOLLOW|O_CLOEXEC added), if it
  // still leads to the node's file.
  Result<Fd> open_node(NodeId node, int flags) const;
  // ENOENT unless `fd` is the host file the node was found to be.
  Result<void> check_same(NodeId node, int fd) const;
  Result<Fd> open_parent(NodeId node) const;
  // openat2 of `path` beneath `dir_fd` with the resolve flags above.
  Result<Fd> open_beneath(int dir_fd, const std::string& path, int flags, std::uint32_t mode = 0) const;
  // A regular file opened with the guest's flags (those it may choose).
  Result<Fd> open_regular(int dir_fd, const std::string& path, std::uint32_t flags, bool create) const;

  std::optional<NodeId> child(NodeId parent, std::string_view name) const;
  // ENFILE when (parent, name) has no node yet and the table is full.
  Result<void> check_room(NodeId parent, std::string_view name) const;
  // The node for (parent, name) and the host file `st`, made if absent or
  // if the name now is another file, with one more lookup.
  Result<NodeId> remember(NodeId parent, std::string_view name, const struct ::stat& st);
  // Table edits; they keep nodes that lost their last reference, which
  // prune() then drops (so a parent stays while an edit still needs it).
  void hook(NodeId node, NodeId parent, std::string_view name);
  void unhook(NodeId node);
  void detach(NodeId node);
  void prune(NodeId node);

  wire::Attr attr_of(const struct ::stat& st) const;
  wire::Entry entry_of(NodeId node, const struct ::stat& st) const;
  // After making `name` in `dir_fd` (fd: a descriptor of it): gives it to
  // the caller and the guest's mode (nullopt: a symlink, which has none),
  // then answers its entry. On failure the new name is removed again.
  Result<wire::Entry> finish_new(NodeId parent, int dir_fd, std::string_view name, const Fd& fd,
                                 std::optional<std::uint32_t> mode, const Caller& caller);

  Result<FileHandle*> file_handle(NodeId node, Handle handle);
  Result<DirHandle*> dir_handle(NodeId node, Handle handle);
  Result<void> check_handle_room() const;
  Handle add_handle(OpenHandle handle);

  Result<void> set_owner(int fd, const wire::Request& request);
  Result<void> set_mode(NodeId node, int fd, bool real_fd, std::uint32_t mode);
  Result<void> set_size(NodeId node, const FileHandle* handle, std::uint64_t size);
  Result<void> set_times(NodeId node, const FileHandle* handle, const wire::Request& request);

  Fd root_;
  Options options_;
  bool chown_to_caller_;
  NodeId next_node_ = wire::kRootNode + 1;
  Handle next_handle_ = 1;
  std::uint64_t listed_entries_ = 0;
  std::unordered_map<NodeId, Node> nodes_;
  std::map<std::pair<NodeId, std::string>, NodeId, ChildLess> by_name_;
  std::unordered_map<Handle, OpenHandle> handles_;
};

}  // namespace sandboxd::vfs
