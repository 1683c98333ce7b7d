// What serves one host-controlled mount: a file system the daemon answers
// the guest's FUSE requests from (daemon/vfs/fs_server.hpp forwards them).
//
// A provider is told about nodes by number, as FUSE is: kRootNode is the
// mount's root, lookup() hands out further numbers (one reference per
// successful lookup-like answer) and forget() gives references back. Every
// number, name, handle and size comes from the guest and is hostile: an
// unknown node or handle is ENOENT or EBADF, never undefined behaviour.
//
// Calls are synchronous and may block (the host provider does file I/O), so
// the server makes them off the event loop, one at a time per provider: a
// provider needs no locking of its own.
//
// Errors are positive errno values, as the guest's kernel will see them.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "protocol/expected.hpp"
#include "protocol/fs_messages.hpp"

namespace sandboxd::vfs {

namespace wire = protocol::fs;
using NodeId = std::uint64_t;
using Handle = std::uint64_t;

template <class T>
using Result = Expected<T, int>;
inline Unexpected<int> fail(int error) { return {error}; }

// Who asks, in the guest.
struct Caller {
  std::uint32_t uid = 0, gid = 0, pid = 0;
};

struct Created {
  wire::Entry entry;
  wire::OpenFile open;
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual Result<wire::Entry> lookup(NodeId parent, std::string_view name) = 0;
  virtual void forget(NodeId node, std::uint64_t nlookup) = 0;
  // `handle` is wire::kNoHandle when the kernel has no open file to name.
  virtual Result<wire::Attr> getattr(NodeId node, Handle handle) = 0;
  // The members of `request` named by request.set (wire::SetattrBits).
  virtual Result<wire::Attr> setattr(NodeId node, const wire::Request& request, const Caller& caller) = 0;
  virtual Result<std::string> readlink(NodeId node) = 0;
  virtual Result<wire::Entry> mknod(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t rdev,
                                    const Caller& caller) = 0;
  virtual Result<wire::Entry> mkdir(NodeId parent, std::string_view name, std::uint32_t mode,
                                    const Caller& caller) = 0;
  virtual Result<void> unlink(NodeId parent, std::string_view name) = 0;
  virtual Result<void> rmdir(NodeId parent, std::string_view name) = 0;
  virtual Result<wire::Entry> symlink(NodeId parent, std::string_view name, std::string_view target,
                                      const Caller& caller) = 0;
  // flags: RENAME_NOREPLACE and RENAME_EXCHANGE; others are EINVAL.
  virtual Result<void> rename(NodeId parent, std::string_view name, NodeId new_parent, std::string_view new_name,
                              std::uint32_t flags) = 0;
  virtual Result<wire::Entry> link(NodeId node, NodeId new_parent, std::string_view new_name) = 0;
  // flags: open(2)'s; O_CREAT is not among them (create() is).
  virtual Result<wire::OpenFile> open(NodeId node, std::uint32_t flags) = 0;
  virtual Result<Created> create(NodeId parent, std::string_view name, std::uint32_t mode, std::uint32_t flags,
                                 const Caller& caller) = 0;
  // At most `size` bytes (size <= wire::kMaxData); fewer only at the end of the file.
  virtual Result<Bytes> read(NodeId node, Handle handle, std::uint64_t offset, std::uint32_t size) = 0;
  virtual Result<std::uint32_t> write(NodeId node, Handle handle, std::uint64_t offset, ByteSpan data) = 0;
  virtual Result<void> flush(NodeId node, Handle handle) = 0;
  virtual Result<void> release(NodeId node, Handle handle) = 0;
  virtual Result<void> fsync(NodeId node, Handle handle, bool datasync) = 0;
  virtual Result<wire::OpenFile> opendir(NodeId node) = 0;
  // Entries from `offset` (0: the start; otherwise a next_offset an earlier
  // answer gave) whose FUSE dirent encoding fits in `size` bytes:
  // sum of (24 + name length) rounded up to 8 each. Empty: the end.
  virtual Result<std::vector<wire::DirEntry>> readdir(NodeId node, Handle handle, std::uint64_t offset,
                                                      std::uint32_t size) = 0;
  virtual Result<void> releasedir(NodeId node, Handle handle) = 0;
  virtual Result<wire::StatFs> statfs(NodeId node) = 0;
  // mask: access(2)'s F_OK / R_OK / W_OK / X_OK.
  virtual Result<void> access(NodeId node, std::uint32_t mask, const Caller& caller) = 0;
  virtual Result<void> fallocate(NodeId node, Handle handle, std::uint32_t mode, std::uint64_t offset,
                                 std::uint64_t length) = 0;

  // Called once when the mount goes away (the sandbox ended or the guest's
  // bridge restarted): every handle and node reference is dropped.
  virtual void reset() = 0;
};

using ProviderPtr = std::unique_ptr<Provider>;

// The size of one FUSE dirent for `name`: what readdir's `size` counts.
inline std::uint32_t dirent_size(std::string_view name) {
  return static_cast<std::uint32_t>((24 + name.size() + 7) & ~std::size_t{7});
}

}  // namespace sandboxd::vfs
