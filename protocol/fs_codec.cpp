#include "protocol/fs_codec.hpp"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sandboxd::protocol::fs {
namespace {

// Longest MountResult message: one line for a log, not a document.
constexpr std::uint32_t kMaxMessage = 1024;
// Largest errno a Reply may carry (the kernel's MAX_ERRNO).
constexpr std::int32_t kMaxErrno = 4095;
constexpr std::uint32_t kNsecPerSec = 1'000'000'000;
// The S_IFMT values a directory entry's type may be, as Linux numbers them on
// every architecture; spelled out so the wire does not depend on the
// headers of whichever end compiles this.
constexpr std::uint32_t kFileTypes[] = {0140000, 0120000, 0100000, 0060000, 0040000, 0020000, 0010000};
// Wire sizes of the smallest readdir entry (ino, next_offset, type, a
// one-byte name) and of one forget item: a count is checked against what the
// frame still holds before anything is reserved for it.
constexpr std::size_t kMinDirEntry = 8 + 8 + 4 + 2 + 1;
constexpr std::size_t kForgetItem = 8 + 8;

constexpr std::uint8_t kMountReadOnly = 1u << 0;
constexpr std::uint8_t kOpenDirectIo = 1u << 0;
constexpr std::uint8_t kOpenKeepCache = 1u << 1;

bool known_op(std::uint8_t op) { return op >= 1 && op <= kMaxOp; }

// --- Writing. The encoder trusts its input: a member beyond the limits is
// the caller's bug, and checking for it is the peer's decoder's job.

void put_string(ByteWriter& w, std::string_view s) {
  w.u16(static_cast<std::uint16_t>(s.size()));
  w.bytes(as_bytes(s));
}
void put_data(ByteWriter& w, ByteSpan b) {
  w.u32(static_cast<std::uint32_t>(b.size()));
  w.bytes(b);
}
void put_time(ByteWriter& w, const Timespec& t) {
  w.u64(static_cast<std::uint64_t>(t.sec));
  w.u32(t.nsec);
}
void put_attr(ByteWriter& w, const Attr& a) {
  w.u64(a.ino);
  w.u64(a.size);
  w.u64(a.blocks);
  put_time(w, a.atime);
  put_time(w, a.mtime);
  put_time(w, a.ctime);
  w.u32(a.mode);
  w.u32(a.nlink);
  w.u32(a.uid);
  w.u32(a.gid);
  w.u32(a.rdev);
  w.u32(a.blksize);
}
void put_entry(ByteWriter& w, const Entry& e) {
  w.u64(e.node);
  w.u64(e.generation);
  put_attr(w, e.attr);
  w.u32(e.entry_timeout_ms);
  w.u32(e.attr_timeout_ms);
}
void put_open(ByteWriter& w, const OpenFile& o) {
  w.u64(o.handle);
  w.u8(static_cast<std::uint8_t>((o.direct_io ? kOpenDirectIo : 0) | (o.keep_cache ? kOpenKeepCache : 0)));
}
void put_statfs(ByteWriter& w, const StatFs& s) {
  w.u64(s.blocks);
  w.u64(s.blocks_free);
  w.u64(s.blocks_available);
  w.u64(s.files);
  w.u64(s.files_free);
  w.u32(s.block_size);
  w.u32(s.fragment_size);
  w.u32(s.name_max);
}

// --- Reading.

// A ByteReader that also remembers why a field was refused. A refusal stops
// the reader as a short read does, so the fields after it read as zeros and
// the outcome is looked at once, in finish(). A short read seen before a
// refusal wins: a name cut off by the end of the frame is a truncation, not
// a bad name.
class Fields {
 public:
  Fields(ByteSpan data, const char* truncated, const char* trailing)
      : r(data), truncated_(truncated), trailing_(trailing) {}

  ByteReader r;

  void refuse(const char* reason) {
    if (!r.ok()) return;
    refused_ = reason;
    r.fail();
  }

  template <class T>
  Expected<T> finish(T value) {
    if (refused_ != nullptr) return parse_error(refused_);
    if (!r.ok()) return parse_error(truncated_);
    if (!r.at_end()) return parse_error(trailing_);
    return value;
  }

  std::int32_t i32() { return static_cast<std::int32_t>(r.u32()); }

  // A directory entry's name.
  std::string name() {
    std::uint16_t n = r.u16();
    if (n > kMaxName) {
      refuse("name longer than 255 bytes");
      return {};
    }
    std::string s(as_chars(r.take(n)));
    if (r.ok() && !valid_name(s)) refuse("name is empty, \".\" or \"..\", or holds '/' or NUL");
    return s;
  }

  // A u16-length string of at most `max` bytes, without NUL.
  std::string text(std::uint32_t max, const char* too_long) {
    std::uint16_t n = r.u16();
    if (n > max) {
      refuse(too_long);
      return {};
    }
    std::string s(as_chars(r.take(n)));
    if (s.find('\0') != std::string::npos) refuse("string holds a NUL byte");
    return s;
  }

  // A symlink's contents: a path, and not an empty one.
  std::string target() {
    std::string s = text(kMaxPath, "symlink target longer than 4095 bytes");
    if (s.empty()) refuse("symlink target is empty");
    return s;
  }

  Bytes data() {
    std::uint32_t n = r.u32();
    if (n > kMaxData) {
      refuse("data longer than 1 MiB");
      return {};
    }
    ByteSpan b = r.take(n);
    return Bytes(b.begin(), b.end());
  }

  Timespec time() {
    Timespec t;
    t.sec = static_cast<std::int64_t>(r.u64());
    t.nsec = r.u32();
    if (t.nsec >= kNsecPerSec) refuse("nanoseconds not below 1e9");
    return t;
  }

  Attr attr() {
    Attr a;
    a.ino = r.u64();
    a.size = r.u64();
    a.blocks = r.u64();
    a.atime = time();
    a.mtime = time();
    a.ctime = time();
    a.mode = r.u32();
    a.nlink = r.u32();
    a.uid = r.u32();
    a.gid = r.u32();
    a.rdev = r.u32();
    a.blksize = r.u32();
    return a;
  }

  Entry entry() {
    Entry e;
    e.node = r.u64();
    e.generation = r.u64();
    e.attr = attr();
    e.entry_timeout_ms = r.u32();
    e.attr_timeout_ms = r.u32();
    return e;
  }

  OpenFile open() {
    OpenFile o;
    o.handle = r.u64();
    std::uint8_t flags = r.u8();
    if ((flags & ~(kOpenDirectIo | kOpenKeepCache)) != 0) refuse("open flags beyond direct_io and keep_cache");
    o.direct_io = (flags & kOpenDirectIo) != 0;
    o.keep_cache = (flags & kOpenKeepCache) != 0;
    return o;
  }

  StatFs statfs() {
    StatFs s;
    s.blocks = r.u64();
    s.blocks_free = r.u64();
    s.blocks_available = r.u64();
    s.files = r.u64();
    s.files_free = r.u64();
    s.block_size = r.u32();
    s.fragment_size = r.u32();
    s.name_max = r.u32();
    return s;
  }

  std::vector<DirEntry> dir_entries() {
    std::uint32_t count = r.u32();
    if (count > kMaxDirEntries) {
      refuse("more than 4096 directory entries");
      return {};
    }
    if (count > r.remaining() / kMinDirEntry) {
      r.fail();
      return {};
    }
    std::vector<DirEntry> out;
    out.reserve(count);
    for (std::uint32_t i = 0; i < count && r.ok(); ++i) {
      DirEntry e;
      e.ino = r.u64();
      e.next_offset = r.u64();
      e.type = r.u32();
      if (std::find(std::begin(kFileTypes), std::end(kFileTypes), e.type) == std::end(kFileTypes))
        refuse("directory entry type is not a file type");
      e.name = name();
      out.push_back(std::move(e));
    }
    return out;
  }

 private:
  const char* truncated_;
  const char* trailing_;
  const char* refused_ = nullptr;
};

// --- Requests: the common header, then the members the op uses, in the
// order the README lists them.

void encode_request(const Request& m, ByteWriter& w) {
  w.u64(m.unique);
  w.u32(m.mount_id);
  w.u8(static_cast<std::uint8_t>(m.op));
  w.u64(m.node);
  w.u32(m.uid);
  w.u32(m.gid);
  w.u32(m.pid);
  switch (m.op) {
    case Op::kLookup:
    case Op::kUnlink:
    case Op::kRmdir:
      put_string(w, m.name);
      break;
    case Op::kGetattr:
    case Op::kFlush:
    case Op::kRelease:
    case Op::kReleasedir:
      w.u64(m.handle);
      break;
    case Op::kSetattr:
      w.u32(m.set);
      w.u32(m.mode);
      w.u32(m.uid_to);
      w.u32(m.gid_to);
      w.u64(m.size_to);
      put_time(w, m.atime_to);
      put_time(w, m.mtime_to);
      w.u64(m.handle);
      break;
    case Op::kReadlink:
    case Op::kOpendir:
    case Op::kStatfs:
      break;
    case Op::kMknod:
      w.u32(m.mode);
      w.u32(m.rdev);
      put_string(w, m.name);
      break;
    case Op::kMkdir:
      w.u32(m.mode);
      put_string(w, m.name);
      break;
    case Op::kSymlink:
      put_string(w, m.name);
      put_string(w, m.target);
      break;
    case Op::kRename:
      put_string(w, m.name);
      w.u64(m.new_parent);
      put_string(w, m.target);
      w.u32(m.flags);
      break;
    case Op::kLink:
      w.u64(m.new_parent);
      put_string(w, m.name);
      break;
    case Op::kOpen:
    case Op::kAccess:
      w.u32(m.flags);
      break;
    case Op::kRead:
    case Op::kReaddir:
      w.u64(m.handle);
      w.u64(m.offset);
      w.u32(m.size);
      break;
    case Op::kWrite:
      w.u64(m.handle);
      w.u64(m.offset);
      put_data(w, m.data);
      break;
    case Op::kFsync:
      w.u64(m.handle);
      w.u32(m.flags);
      break;
    case Op::kCreate:
      w.u32(m.mode);
      w.u32(m.flags);
      put_string(w, m.name);
      break;
    case Op::kFallocate:
      w.u64(m.handle);
      w.u64(m.offset);
      w.u64(m.length);
      w.u32(m.mode);
      break;
  }
}

Request decode_request(Fields& f) {
  ByteReader& r = f.r;
  Request m;
  m.unique = r.u64();
  m.mount_id = r.u32();
  std::uint8_t op = r.u8();
  if (!known_op(op)) {
    f.refuse("unknown op");
    return m;
  }
  m.op = static_cast<Op>(op);
  m.node = r.u64();
  m.uid = r.u32();
  m.gid = r.u32();
  m.pid = r.u32();
  switch (m.op) {
    case Op::kLookup:
    case Op::kUnlink:
    case Op::kRmdir:
      m.name = f.name();
      break;
    case Op::kGetattr:
    case Op::kFlush:
    case Op::kRelease:
    case Op::kReleasedir:
      m.handle = r.u64();
      break;
    case Op::kSetattr:
      m.set = r.u32();
      if ((m.set & ~kSetattrMask) != 0) f.refuse("setattr bits outside the known ones");
      m.mode = r.u32();
      m.uid_to = r.u32();
      m.gid_to = r.u32();
      m.size_to = r.u64();
      m.atime_to = f.time();
      m.mtime_to = f.time();
      m.handle = r.u64();
      break;
    case Op::kReadlink:
    case Op::kOpendir:
    case Op::kStatfs:
      break;
    case Op::kMknod:
      m.mode = r.u32();
      m.rdev = r.u32();
      m.name = f.name();
      break;
    case Op::kMkdir:
      m.mode = r.u32();
      m.name = f.name();
      break;
    case Op::kSymlink:
      m.name = f.name();
      m.target = f.target();
      break;
    case Op::kRename:
      m.name = f.name();
      m.new_parent = r.u64();
      m.target = f.name();
      m.flags = r.u32();
      break;
    case Op::kLink:
      m.new_parent = r.u64();
      m.name = f.name();
      break;
    case Op::kOpen:
    case Op::kAccess:
      m.flags = r.u32();
      break;
    case Op::kRead:
    case Op::kReaddir:
      m.handle = r.u64();
      m.offset = r.u64();
      m.size = r.u32();
      if (m.size > kMaxData) f.refuse("read or readdir size above 1 MiB");
      break;
    case Op::kWrite:
      m.handle = r.u64();
      m.offset = r.u64();
      m.data = f.data();
      break;
    case Op::kFsync:
      m.handle = r.u64();
      m.flags = r.u32();
      if (m.flags > 1) f.refuse("fsync flags other than datasync");
      break;
    case Op::kCreate:
      m.mode = r.u32();
      m.flags = r.u32();
      m.name = f.name();
      break;
    case Op::kFallocate:
      m.handle = r.u64();
      m.offset = r.u64();
      m.length = r.u64();
      m.mode = r.u32();
      break;
  }
  return m;
}

// --- The other frames.

void encode_fields(const Ready&, ByteWriter&) {}
void encode_fields(const Mount& m, ByteWriter& w) {
  w.u32(m.mount_id);
  w.u8(m.read_only ? kMountReadOnly : 0);
  put_string(w, m.path);
}
void encode_fields(const MountResult& m, ByteWriter& w) {
  w.u32(m.mount_id);
  w.u32(static_cast<std::uint32_t>(m.error));
  put_string(w, m.message);
}
void encode_fields(const Unmount& m, ByteWriter& w) { w.u32(m.mount_id); }
void encode_fields(const Request& m, ByteWriter& w) { encode_request(m, w); }
void encode_fields(const Forget& m, ByteWriter& w) {
  w.u32(m.mount_id);
  w.u32(static_cast<std::uint32_t>(m.items.size()));
  for (const auto& item : m.items) {
    w.u64(item.node);
    w.u64(item.nlookup);
  }
}
void encode_fields(const Reply& m, ByteWriter& w) {
  w.u64(m.unique);
  w.u32(static_cast<std::uint32_t>(m.error));
  w.bytes(m.body);
}

Frame decode_fields(FrameType type, Fields& f) {
  ByteReader& r = f.r;
  switch (type) {
    case FrameType::kReady:
      return Ready{};
    case FrameType::kMount: {
      Mount m;
      m.mount_id = r.u32();
      std::uint8_t flags = r.u8();
      if ((flags & ~kMountReadOnly) != 0) f.refuse("mount flags beyond read_only");
      m.read_only = (flags & kMountReadOnly) != 0;
      m.path = f.text(kMaxPath, "mount path longer than 4095 bytes");
      if (m.path.empty() || m.path[0] != '/') f.refuse("mount path is not absolute");
      return m;
    }
    case FrameType::kMountResult: {
      MountResult m;
      m.mount_id = r.u32();
      m.error = f.i32();
      if (m.error < 0) f.refuse("mount error is negative");
      m.message = f.text(kMaxMessage, "message longer than 1024 bytes");
      return m;
    }
    case FrameType::kUnmount:
      return Unmount{r.u32()};
    case FrameType::kRequest:
      return decode_request(f);
    case FrameType::kForget: {
      Forget m;
      m.mount_id = r.u32();
      std::uint32_t count = r.u32();
      if (count == 0)
        f.refuse("forget with no items");
      else if (count > kMaxForgets)
        f.refuse("more than 1024 forgets");
      else if (count > r.remaining() / kForgetItem)
        r.fail();
      if (!r.ok()) return m;
      m.items.reserve(count);
      for (std::uint32_t i = 0; i < count; ++i) {
        Forget::Item item;
        item.node = r.u64();
        item.nlookup = r.u64();
        m.items.push_back(item);
      }
      return m;
    }
    case FrameType::kReply: {
      Reply m;
      m.unique = r.u64();
      m.error = f.i32();
      if (m.error < 0 || m.error > kMaxErrno) f.refuse("reply error is neither 0 nor an errno");
      ByteSpan body = r.rest();
      m.body.assign(body.begin(), body.end());
      if (m.error != 0 && !m.body.empty()) f.refuse("failed reply has a body");
      return m;
    }
  }
  return Ready{};  // not reached: decode_body checked the type
}

bool known_type(std::uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kReady:
    case FrameType::kMountResult:
    case FrameType::kRequest:
    case FrameType::kForget:
    case FrameType::kMount:
    case FrameType::kUnmount:
    case FrameType::kReply:
      return true;
  }
  return false;
}

FrameType type_of(const Frame& frame) {
  static constexpr FrameType kTypes[] = {FrameType::kReady,   FrameType::kMount,   FrameType::kMountResult,
                                         FrameType::kUnmount, FrameType::kRequest, FrameType::kForget,
                                         FrameType::kReply};
  static_assert(std::size(kTypes) == std::variant_size_v<Frame>);
  return kTypes[frame.index()];
}

}  // namespace

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxName && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

void encode(const Frame& frame, Bytes& out) {
  std::size_t start = out.size();
  ByteWriter w(out);
  w.u32(0);  // length, patched below
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(type_of(frame)));
  std::visit([&](const auto& m) { encode_fields(m, w); }, frame);
  w.patch_u32(start, static_cast<std::uint32_t>(out.size() - start - 4));
}

Bytes encode(const Frame& frame) {
  Bytes out;
  encode(frame, out);
  return out;
}

Expected<Frame> decode_body(ByteSpan body) {
  ByteReader header(body);
  std::uint8_t version = header.u8();
  std::uint8_t type = header.u8();
  if (!header.ok()) return parse_error("frame shorter than its version and type");
  if (version != kVersion) return parse_error("unsupported mounts protocol version");
  if (!known_type(type)) return parse_error("unknown frame type");
  Fields f(body.subspan(2), "frame body is truncated", "frame has trailing bytes");
  Frame frame = decode_fields(static_cast<FrameType>(type), f);
  return f.finish(std::move(frame));
}

Bytes encode_reply_body(Op op, const ReplyBody& body) {
  Bytes out;
  ByteWriter w(out);
  switch (op) {
    case Op::kLookup:
    case Op::kMknod:
    case Op::kMkdir:
    case Op::kSymlink:
    case Op::kLink:
      put_entry(w, body.entry);
      break;
    case Op::kCreate:
      put_entry(w, body.entry);
      put_open(w, body.open);
      break;
    case Op::kGetattr:
    case Op::kSetattr:
      put_attr(w, body.attr);
      break;
    case Op::kOpen:
    case Op::kOpendir:
      put_open(w, body.open);
      break;
    case Op::kRead:
      put_data(w, body.data);
      break;
    case Op::kWrite:
      w.u32(body.written);
      break;
    case Op::kReaddir:
      w.u32(static_cast<std::uint32_t>(body.entries.size()));
      for (const auto& e : body.entries) {
        w.u64(e.ino);
        w.u64(e.next_offset);
        w.u32(e.type);
        put_string(w, e.name);
      }
      break;
    case Op::kStatfs:
      put_statfs(w, body.statfs);
      break;
    case Op::kReadlink:
      put_string(w, body.target);
      break;
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kRename:
    case Op::kFlush:
    case Op::kRelease:
    case Op::kFsync:
    case Op::kReleasedir:
    case Op::kAccess:
    case Op::kFallocate:
      break;
  }
  return out;
}

Expected<ReplyBody> decode_reply_body(Op op, ByteSpan bytes) {
  if (!known_op(static_cast<std::uint8_t>(op))) return parse_error("unknown op");
  Fields f(bytes, "reply body is truncated", "reply body has trailing bytes");
  ReplyBody b;
  switch (op) {
    case Op::kLookup:
    case Op::kMknod:
    case Op::kMkdir:
    case Op::kSymlink:
    case Op::kLink:
      b.entry = f.entry();
      break;
    case Op::kCreate:
      b.entry = f.entry();
      b.open = f.open();
      break;
    case Op::kGetattr:
    case Op::kSetattr:
      b.attr = f.attr();
      break;
    case Op::kOpen:
    case Op::kOpendir:
      b.open = f.open();
      break;
    case Op::kRead:
      b.data = f.data();
      break;
    case Op::kWrite:
      b.written = f.r.u32();
      if (b.written > kMaxData) f.refuse("written more than one write carries");
      break;
    case Op::kReaddir:
      b.entries = f.dir_entries();
      break;
    case Op::kStatfs:
      b.statfs = f.statfs();
      break;
    case Op::kReadlink:
      b.target = f.target();
      break;
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kRename:
    case Op::kFlush:
    case Op::kRelease:
    case Op::kFsync:
    case Op::kReleasedir:
    case Op::kAccess:
    case Op::kFallocate:
      break;
  }
  return f.finish(std::move(b));
}

void FrameSplitter::feed(ByteSpan data) {
  if (failed_ || data.empty()) return;
  // Move the unconsumed tail to the front once the consumed head dominates,
  // so the buffer stays about one frame long without shifting on every frame.
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), data.begin(), data.end());
}

std::optional<Bytes> FrameSplitter::next() {
  if (failed_) return std::nullopt;
  ByteSpan pending = ByteSpan(buffer_).subspan(start_);
  if (pending.size() < 4) return std::nullopt;
  ByteReader header(pending);
  std::uint32_t length = header.u32();
  if (length > kMaxFrameBody || length < 2) {
    // Unlike the control port's decoder this does not skip ahead: a peer
    // that sends a length no frame has is not one to stay in step with.
    failed_ = true;
    Bytes().swap(buffer_);
    start_ = 0;
    return std::nullopt;
  }
  if (pending.size() - 4 < length) return std::nullopt;
  ByteSpan body = pending.subspan(4, length);
  Bytes out(body.begin(), body.end());
  start_ += 4 + length;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return out;
}

}  // namespace sandboxd::protocol::fs
