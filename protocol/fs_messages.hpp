// The host-controlled mounts protocol: what the agent's FUSE bridge and the
// daemon's file system providers exchange over the "sandbox.fs"
// virtio-serial port.
//
// The guest kernel sends FUSE requests for the paths mounted from the host;
// the bridge (guest/fs_bridge) turns each into a Request naming its mount, its
// op and the node it is about, and the daemon (daemon/vfs) answers with a
// Reply carrying the same `unique`. The bridge holds no state of its own
// beyond which requests wait for which answers: what a node is, what its
// contents are and who may change them is the daemon's to decide.
//
// This header is the vocabulary; protocol/fs_codec.hpp turns it into frames
// and back. Frames are laid out as on the control port (u32 length, u8
// version, u8 type, body), with their own version and a larger body limit so
// that a 1 MiB read or write fits in one. protocol/README.md, "The mounts
// port", documents every byte.
//
// Both ends treat the other as hostile: the host because the guest runs code
// it does not trust, the guest because a frame that does not parse is a bug
// it must survive. Every count and length is bounded here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol/bytes.hpp"

namespace sandboxd::protocol::fs {

inline constexpr std::uint8_t kVersion = 1;
// Largest read or write in one request: the bridge asks the kernel for at
// most this much (FUSE max_write / max_read).
inline constexpr std::uint32_t kMaxData = 1u << 20;
// Largest frame body: one full read or write plus its header.
inline constexpr std::uint32_t kMaxFrameBody = kMaxData + 4096;
// Longest name of one directory entry (NAME_MAX) and longest symlink target
// or mount path (PATH_MAX - 1).
inline constexpr std::uint32_t kMaxName = 255;
inline constexpr std::uint32_t kMaxPath = 4095;
// Most requests the bridge has outstanding at once. The daemon refuses a
// guest that exceeds it instead of queueing more.
inline constexpr std::uint32_t kMaxInFlight = 64;
// Most entries in one Forget and one readdir answer.
inline constexpr std::uint32_t kMaxForgets = 1024;
inline constexpr std::uint32_t kMaxDirEntries = 4096;
// Mounts one sandbox can have.
inline constexpr std::uint32_t kMaxMounts = 16;

// The node every mount's root is.
inline constexpr std::uint64_t kRootNode = 1;
// No file handle (a getattr or setattr on a path, not an open file).
inline constexpr std::uint64_t kNoHandle = ~std::uint64_t{0};

enum class FrameType : std::uint8_t {
  // guest -> host
  kReady = 0x01,        // the bridge is up
  kMountResult = 0x02,  // a Mount is done, or failed
  kRequest = 0x03,      // a FUSE operation to answer
  kForget = 0x04,       // the kernel dropped references to nodes; no answer
  // host -> guest
  kMount = 0x81,
  kUnmount = 0x82,
  kReply = 0x83,
};

enum class Op : std::uint8_t {
  kLookup = 1,
  kGetattr = 2,
  kSetattr = 3,
  kReadlink = 4,
  kMknod = 5,
  kMkdir = 6,
  kUnlink = 7,
  kRmdir = 8,
  kSymlink = 9,
  kRename = 10,
  kLink = 11,
  kOpen = 12,
  kRead = 13,
  kWrite = 14,
  kFlush = 15,
  kRelease = 16,
  kFsync = 17,
  kOpendir = 18,
  kReaddir = 19,
  kReleasedir = 20,
  kStatfs = 21,
  kAccess = 22,
  kCreate = 23,
  kFallocate = 24,
};
inline constexpr std::uint8_t kMaxOp = 24;
const char* to_string(Op op);
// True for the ops a read-only mount refuses with EROFS.
bool modifies(Op op);

struct Timespec {
  std::int64_t sec = 0;
  std::uint32_t nsec = 0;  // < 1e9
  bool operator==(const Timespec&) const = default;
};

// A node's attributes, as stat(2) gives them.
struct Attr {
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::uint64_t blocks = 0;  // 512-byte units
  Timespec atime, mtime, ctime;
  std::uint32_t mode = 0;  // type and permission bits
  std::uint32_t nlink = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t rdev = 0;
  std::uint32_t blksize = 0;
  bool operator==(const Attr&) const = default;
};

// What a lookup (and mkdir, mknod, symlink, link, create) answers: the node
// the kernel now holds one more reference to, and how long it may cache it.
struct Entry {
  std::uint64_t node = 0;
  std::uint64_t generation = 0;
  Attr attr;
  std::uint32_t entry_timeout_ms = 0;
  std::uint32_t attr_timeout_ms = 0;
  bool operator==(const Entry&) const = default;
};

// An open file or directory.
struct OpenFile {
  std::uint64_t handle = 0;
  bool direct_io = false;   // bypass the guest's page cache for this file
  bool keep_cache = false;  // the guest's cached pages of it are still good
  bool operator==(const OpenFile&) const = default;
};

struct DirEntry {
  std::uint64_t ino = 0;
  std::uint64_t next_offset = 0;  // the readdir offset that continues after this one
  std::uint32_t type = 0;         // the S_IFMT bits of its mode
  std::string name;
  bool operator==(const DirEntry&) const = default;
};

struct StatFs {
  std::uint64_t blocks = 0, blocks_free = 0, blocks_available = 0;
  std::uint64_t files = 0, files_free = 0;
  std::uint32_t block_size = 0, fragment_size = 0, name_max = 0;
  bool operator==(const StatFs&) const = default;
};

// Which members of a setattr apply. The meanings are FUSE's FATTR_* (and
// libfuse's FUSE_SET_ATTR_*) bits, but not their values: these are numbered
// densely, with no bit for the file handle (that is `handle` being other than
// kNoHandle), so the *_NOW bits sit one lower than FUSE's and the bridge
// translates bit by bit.
enum SetattrBits : std::uint32_t {
  kSetMode = 1u << 0,
  kSetUid = 1u << 1,
  kSetGid = 1u << 2,
  kSetSize = 1u << 3,
  kSetAtime = 1u << 4,
  kSetMtime = 1u << 5,
  kSetAtimeNow = 1u << 6,
  kSetMtimeNow = 1u << 7,
};
inline constexpr std::uint32_t kSetattrMask = 0xff;

// guest -> host, once per bridge start (again after it restarted: every
// mount is then gone).
struct Ready {
  bool operator==(const Ready&) const = default;
};

// host -> guest: mount a FUSE file system at `path` (absolute), served by
// the daemon's provider for `mount_id`. The bridge creates the directory.
struct Mount {
  std::uint32_t mount_id = 0;
  bool read_only = false;
  std::string path;
  bool operator==(const Mount&) const = default;
};

// guest -> host: the Mount with `mount_id` is done (error 0) or failed with
// an errno and a message.
struct MountResult {
  std::uint32_t mount_id = 0;
  std::int32_t error = 0;
  std::string message;
  bool operator==(const MountResult&) const = default;
};

// host -> guest: unmount (lazily) and forget the mount.
struct Unmount {
  std::uint32_t mount_id = 0;
  bool operator==(const Unmount&) const = default;
};

// guest -> host: one FUSE operation. Only the members its op uses are on the
// wire (protocol/README.md lists which); the rest stay at their defaults.
struct Request {
  std::uint64_t unique = 0;  // echoed by the Reply
  std::uint32_t mount_id = 0;
  Op op = Op::kLookup;
  std::uint64_t node = 0;  // the node the op is about (the parent, for ops on a name)
  // The calling process's credentials in the guest.
  std::uint32_t uid = 0, gid = 0, pid = 0;

  std::string name;      // lookup mknod mkdir unlink rmdir symlink rename create; link's new name
  std::string target;    // symlink: the link's contents; rename: the new name
  std::uint64_t new_parent = 0;  // rename, link
  std::uint64_t handle = kNoHandle;  // getattr setattr read write flush release fsync readdir releasedir fallocate
  std::uint64_t offset = 0;  // read write readdir fallocate
  std::uint64_t length = 0;  // fallocate
  std::uint32_t size = 0;    // read readdir: at most this many bytes back
  std::uint32_t mode = 0;    // mknod mkdir create (after the umask); setattr; fallocate's mode
  std::uint32_t flags = 0;   // open create: open(2) flags; rename: RENAME_* flags; access: the mask;
                             // fsync: 1 = datasync
  std::uint32_t rdev = 0;    // mknod
  // setattr
  std::uint32_t set = 0;  // SetattrBits
  std::uint32_t uid_to = 0, gid_to = 0;
  std::uint64_t size_to = 0;
  Timespec atime_to, mtime_to;
  Bytes data;  // write
  bool operator==(const Request&) const = default;
};

// guest -> host: the kernel dropped `nlookup` references to each node.
struct Forget {
  struct Item {
    std::uint64_t node = 0;
    std::uint64_t nlookup = 0;
    bool operator==(const Item&) const = default;
  };
  std::uint32_t mount_id = 0;
  std::vector<Item> items;  // 1..kMaxForgets
  bool operator==(const Forget&) const = default;
};

// The answer to one op, when it succeeded. Which member is set follows the
// op: entry (lookup mknod mkdir symlink link), entry+open (create), attr
// (getattr setattr), open (open opendir), data (read), written (write),
// entries (readdir), statfs, target (readlink); nothing for the rest.
struct ReplyBody {
  Entry entry;
  Attr attr;
  OpenFile open;
  Bytes data;
  std::uint32_t written = 0;
  std::vector<DirEntry> entries;
  StatFs statfs;
  std::string target;
  bool operator==(const ReplyBody&) const = default;
};

// host -> guest: the answer to the Request with `unique`. error is 0 or a
// positive errno; with an error the body is empty. The body is encoded for
// the request's op, which the guest remembers by `unique`, so a Reply is
// decoded in two steps: decode_frame leaves `body` as bytes and
// decode_reply_body reads it for the op.
struct Reply {
  std::uint64_t unique = 0;
  std::int32_t error = 0;
  Bytes body;  // encode_reply_body(op, ...) when error == 0
  bool operator==(const Reply&) const = default;
};

using Frame = std::variant<Ready, Mount, MountResult, Unmount, Request, Forget, Reply>;

}  // namespace sandboxd::protocol::fs
