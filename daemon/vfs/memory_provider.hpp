// A provider whose file system lives in the daemon's memory: a tree built
// from a list of files when the mount is made, changed only by the guest,
// gone when the provider is.
//
// Theory of operation
// -------------------
// Every node (file, directory, symlink, FIFO) is one record keyed by its
// inode number, which is also its FUSE node number; numbers are never reused.
// Directories map names to numbers, so hard links are just several names for
// one record, counted by nlink. A record lives while anything refers to it:
// a name (nlink), an open handle, or a lookup reference the guest's kernel
// holds; when all three are gone it is freed, so a file unlinked while open
// keeps its data until the last handle is released and the kernel forgets it.
//
// Semantics follow a local file system closely enough for ordinary tools:
// rename with RENAME_NOREPLACE and RENAME_EXCHANGE (and the usual refusals:
// a directory into itself, a directory over a non-empty one, a directory over
// a file and back), mtime and ctime on writes and truncation, a directory's
// mtime and ctime on every entry change, ctime on attribute changes. atime is
// set only by setattr (as with noatime). Permissions are the guest kernel's
// to check (mounts use default_permissions); owners are stored as given.
//
// Directory offsets are per-directory cookies: every entry gets the next
// number of its directory when it is made, so an offset stays meaningful
// however the directory changes between readdir calls. That is the
// guarantee a snapshot at opendir would give (every entry present throughout
// the listing is returned exactly once) without copying the directory for
// each open handle.
//
// Bounded: total bytes of file contents and symlink targets
// (capacity_bytes) and the number of nodes (max_nodes), both ENOSPC beyond
// (a write that only partly fits is short); open handles (max_handles,
// EMFILE). Files are not sparse: every byte up to the size counts.
//
// Not supported: extended attributes, file locks, device nodes and sockets
// (mknod makes regular files and FIFOs only, as the host provider does).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/vfs/provider.hpp"

namespace sandboxd::vfs {

// One node of a memory mount's initial tree. mode's type bits choose what it
// is: none or S_IFREG a file holding `contents` (any bytes), S_IFDIR an empty
// directory, S_IFLNK a symlink to `contents`. Missing directories above it
// are made 0755.
struct MemoryFile {
  std::string path;  // relative, '/'-separated
  std::string contents;
  std::uint32_t mode = 0644;
};

class MemoryProvider final : public Provider {
 public:
  struct Options {
    // Only the guest changes the tree, so its kernel may cache it long.
    std::uint32_t entry_timeout_ms = 60000;
    std::uint32_t attr_timeout_ms = 60000;
    std::uint64_t capacity_bytes = 64ull << 20;
    std::uint64_t max_nodes = 100000;
    std::uint64_t max_handles = 4096;
    // The owner of the initial tree.
    std::uint32_t uid = 0, gid = 0;
    // The time stamps take; unset: the real-time clock.
    std::function<wire::Timespec()> clock;
  };

  // Fails with a message naming the first entry that is not a relative
  // path of valid names, is listed twice, lies under a non-directory, or does
  // not fit the budgets.
  static Expected<std::unique_ptr<MemoryProvider>, std::string> create(const std::vector<MemoryFile>& files,
                                                                       Options options);

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

  // For tests and diagnostics.
  std::size_t node_count() const { return nodes_.size(); }
  std::uint64_t used_bytes() const { return used_bytes_; }

 private:
  struct Slot {
    NodeId node;
    std::uint64_t cookie;  // its readdir position in the directory
  };
  struct Node {
    std::uint32_t mode = 0;
    std::uint32_t uid = 0, gid = 0;
    std::uint32_t nlink = 0;
    wire::Timespec atime, mtime, ctime;
    Bytes data;          // regular files
    std::string target;  // symlinks
    // Directories: the parent (the root's is itself), the entries by
    // name and by cookie (views of the names in `entries`).
    NodeId parent = 0;
    std::map<std::string, Slot, std::less<>> entries;
    std::map<std::uint64_t, std::string_view> by_cookie;
    std::uint64_t next_cookie = kFirstCookie;
    // References besides names.
    std::uint64_t lookups = 0;
    std::uint64_t handles = 0;
  };
  struct OpenHandle {
    NodeId node;
    bool directory;
    int access;  // O_RDONLY, O_WRONLY or O_RDWR
    bool append;
  };
  // 0 is the offset of the start. There are no "." and ".." entries: the
  // protocol does not carry them.
  static constexpr std::uint64_t kFirstCookie = 1;

  explicit MemoryProvider(Options options);

  wire::Timespec now() const;
  Node* find(NodeId node);
  // The directory `node`, if it still exists and is one (ENOENT, ENOTDIR).
  Result<Node*> directory(NodeId node);
  // The entry `name` of directory `parent`: the name checked, the directory
  // found, and the node the name leads to (ENOENT when there is none).
  struct Child {
    Node* dir;
    NodeId id;
    Node* node;
  };
  Result<Child> child_of(NodeId parent, std::string_view name);
  wire::Attr attr_of(NodeId id, const Node& node) const;
  wire::Entry entry_of(NodeId id, const Node& node) const;
  Result<OpenHandle*> handle_of(NodeId node, Handle handle, bool directory);

  // A new node named `name` in `parent`, with one lookup reference.
  Result<NodeId> add_node(NodeId parent, std::string_view name, std::uint32_t mode, const Caller& caller);
  void add_entry(Node& dir, std::string_view name, NodeId id);
  void remove_entry(Node& dir, std::string_view name);
  // Frees `id` once nothing refers to it.
  void maybe_free(NodeId id);
  // Whether `ancestor` is `id` or a directory above it.
  bool is_within(NodeId id, NodeId ancestor) const;
  // Resizes file contents within the budget (ENOSPC).
  Result<void> resize(Node& node, std::uint64_t size);

  Options options_;
  NodeId next_node_ = wire::kRootNode + 1;
  Handle next_handle_ = 1;
  std::uint64_t used_bytes_ = 0;
  std::unordered_map<NodeId, Node> nodes_;
  std::unordered_map<Handle, OpenHandle> handles_;
};

}  // namespace sandboxd::vfs
