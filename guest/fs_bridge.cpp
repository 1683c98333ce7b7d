// libfuse's API level must be chosen before its header is read.
#define FUSE_USE_VERSION 314

#include "guest/fs_bridge.hpp"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "guest/event_loop.hpp"
#include "guest/outbound_queue.hpp"
#include "protocol/fs_codec.hpp"

namespace sandboxd::guest {
namespace fs = protocol::fs;

namespace {

using Clock = std::chrono::steady_clock;

// epoll tags: the port, or a mount's id for its /dev/fuse fd.
constexpr std::uint64_t kTagPort = ~0ull;
// Above this much queued for the host, not even the port is read: a host
// that mounts over and over but never reads its answers stops itself.
constexpr std::size_t kPortReadCap = 8u << 20;
// How long the port stays out of the epoll set after the host went away
// (a disconnected virtio port reports EPOLLHUP whatever is asked for).
constexpr std::chrono::milliseconds kPortRetry{50};
// Kernel requests read from one mount per wakeup, so that one busy mount
// does not starve the others or the port.
constexpr int kRequestsPerWakeup = 16;
// An answer to getattr or setattr carries no timeout, so its attributes are
// not cached: the host may change the file at any time.
constexpr double kAttrReplyTimeout = 0.0;
// The largest errno a Reply may carry; anything else becomes EIO.
constexpr std::int32_t kMaxErrno = 4095;

void log(const std::string& line) { std::fprintf(stderr, "sandbox-agent: fs: %s\n", line.c_str()); }

class Bridge;

// One FUSE mount: its libfuse session, whose userdata points back here.
struct MountPoint {
  Bridge* bridge = nullptr;
  std::uint32_t id = 0;
  bool read_only = false;
  std::string path;
  fuse_session* session = nullptr;
  int fd = -1;
  fuse_buf buf{};                         // libfuse allocates its memory on the first receive
  std::vector<fs::Forget::Item> forgets;  // sent after each round of reads
};

// A kernel request waiting for the host's Reply.
struct Waiting {
  fuse_req_t req = nullptr;
  fs::Op op = fs::Op::kLookup;
  std::uint32_t mount_id = 0;
  std::uint32_t size = 0;  // read, readdir: the most bytes the kernel takes; write: the bytes given
};

class Bridge {
 public:
  Bridge(int port_fd, FsBridgeMode mode);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  void run();

  // From the libfuse callbacks: forward `r` for `req`, which is answered
  // when the Reply comes (or with EIO if the mount goes first).
  void submit(MountPoint& m, fuse_req_t req, fs::Request&& r);
  void forget(MountPoint& m, std::uint64_t node, std::uint64_t nlookup);

 private:
  enum class TearDown { kUnmount, kGone };

  void send(const fs::Frame& frame) { out_.push(frame); }
  void dispatch(std::uint64_t tag, std::uint32_t events);
  bool accepting() const { return waiting_.size() < fs::kMaxInFlight && out_.size() <= kFsOutboundCap; }
  void update_interest();
  void flush_port();
  void on_port_readable();
  void on_frame(Bytes&& body);
  void on_mount(const fs::Mount& m);
  void on_unmount(const fs::Unmount& u);
  void on_reply(fs::Reply&& reply);
  void answer(const Waiting& w, const fs::ReplyBody& body);
  void on_mount_readable(std::uint32_t id);
  void flush_forgets(MountPoint& m);
  void tear_down(std::uint32_t id, TearDown how);
  void unmount_all();
  void host_gone();
  void out_of_step();
  void log_host_error(const std::string& line);

  int port_fd_;
  FsBridgeMode mode_;
  EventLoop loop_;
  OutboundQueue out_;
  fs::FrameSplitter splitter_;
  std::map<std::uint32_t, std::unique_ptr<MountPoint>> mounts_;
  std::unordered_map<std::uint64_t, Waiting> waiting_;
  std::uint64_t next_unique_ = 1;
  // The host end is not there (kInit): the port is out of the epoll set
  // until this time, then tried again.
  bool port_down_ = false;
  Clock::time_point port_retry_at_{};
  // Something was read from or written to the port since it was last lost,
  // so its loss is worth a line (a port that was never connected is not).
  bool connected_ = false;
  bool done_ = false;
  Clock::time_point log_window_{};
  int log_lines_ = 0;
  int log_suppressed_ = 0;
};

// ---- libfuse callbacks: each builds one Request and hands it over ----------

MountPoint& mount_of(fuse_req_t req) { return *static_cast<MountPoint*>(fuse_req_userdata(req)); }

std::uint64_t handle_of(const fuse_file_info* fi) { return fi != nullptr ? fi->fh : fs::kNoHandle; }

// 0, or why `name` cannot go on the wire (the kernel allows longer names
// than the protocol does).
int take_name(std::string& out, const char* name) {
  std::string_view n(name);
  if (n.size() > fs::kMaxName) return ENAMETOOLONG;
  if (!fs::valid_name(n)) return EINVAL;
  out = n;
  return 0;
}

fs::Timespec timespec_of(const struct timespec& t) {
  // The kernel gives nanoseconds below 1e9; the codec refuses anything else.
  auto nsec = t.tv_nsec >= 0 && t.tv_nsec < 1'000'000'000 ? static_cast<std::uint32_t>(t.tv_nsec) : 0u;
  return {static_cast<std::int64_t>(t.tv_sec), nsec};
}

// Builds the Request for `op` on `node`, lets `fill` add the op's members
// (returning 0, or an errno to answer at once) and submits it. Nothing may
// unwind through libfuse's C frames, and every request must be answered
// exactly once, so a failure here is the request's answer.
template <class Fill>
void forward(fuse_req_t req, fs::Op op, fuse_ino_t node, Fill&& fill) noexcept {
  try {
    fs::Request r;
    r.op = op;
    r.node = node;
    const fuse_ctx* ctx = fuse_req_ctx(req);
    r.uid = ctx->uid;
    r.gid = ctx->gid;
    r.pid = static_cast<std::uint32_t>(ctx->pid);
    if (int error = fill(r); error != 0) {
      fuse_reply_err(req, error);
      return;
    }
    MountPoint& m = mount_of(req);
    m.bridge->submit(m, req, std::move(r));
  } catch (const std::exception& e) {
    log(std::string("cannot forward ") + fs::to_string(op) + ": " + e.what());
    fuse_reply_err(req, ENOMEM);
  } catch (...) {
    fuse_reply_err(req, ENOMEM);
  }
}

void on_init(void*, fuse_conn_info* conn) {
  conn->max_write = std::min(conn->max_write, fs::kMaxData);
  conn->max_read = fs::kMaxData;  // as the max_read mount option says; libfuse checks they agree
  conn->max_readahead = std::min(conn->max_readahead, fs::kMaxData);
  // The host's files may change under the guest at any time, so reads are
  // one at a time and in order, and writes go through at once. O_TRUNC
  // arrives as a setattr of size 0, and the kernel clears set-id bits
  // itself, so the host's providers need not know either rule.
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_ASYNC_READ | FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC |
                                       FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                                       FUSE_CAP_SPLICE_MOVE);
}

void on_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  forward(req, fs::Op::kLookup, parent, [&](fs::Request& r) { return take_name(r.name, name); });
}

void on_forget(fuse_req_t req, fuse_ino_t ino, std::uint64_t nlookup) {
  MountPoint& m = mount_of(req);
  fuse_reply_none(req);
  try {
    m.bridge->forget(m, ino, nlookup);
  } catch (...) {
    // The host keeps a reference it would have dropped; nothing breaks.
  }
}

void on_forget_multi(fuse_req_t req, std::size_t count, fuse_forget_data* forgets) {
  MountPoint& m = mount_of(req);
  fuse_reply_none(req);
  try {
    for (std::size_t i = 0; i < count; ++i) m.bridge->forget(m, forgets[i].ino, forgets[i].nlookup);
  } catch (...) {
  }
}

void on_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  forward(req, fs::Op::kGetattr, ino, [&](fs::Request& r) {
    r.handle = handle_of(fi);
    return 0;
  });
}

void on_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  forward(req, fs::Op::kSetattr, ino, [&](fs::Request& r) {
    // libfuse's bits for "now" differ from the protocol's; the rest agree.
    auto bits = static_cast<unsigned>(to_set);
    r.set = bits & (fs::kSetMode | fs::kSetUid | fs::kSetGid | fs::kSetSize | fs::kSetAtime | fs::kSetMtime);
    if (bits & FUSE_SET_ATTR_ATIME_NOW) r.set |= fs::kSetAtime | fs::kSetAtimeNow;
    if (bits & FUSE_SET_ATTR_MTIME_NOW) r.set |= fs::kSetMtime | fs::kSetMtimeNow;
    r.mode = attr->st_mode;
    r.uid_to = attr->st_uid;
    r.gid_to = attr->st_gid;
    r.size_to = static_cast<std::uint64_t>(attr->st_size);
    r.atime_to = timespec_of(attr->st_atim);
    r.mtime_to = timespec_of(attr->st_mtim);
    r.handle = handle_of(fi);
    return 0;
  });
}

void on_readlink(fuse_req_t req, fuse_ino_t ino) {
  forward(req, fs::Op::kReadlink, ino, [](fs::Request&) { return 0; });
}

void on_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  forward(req, fs::Op::kMknod, parent, [&](fs::Request& r) {
    r.mode = mode;
    r.rdev = static_cast<std::uint32_t>(rdev);
    return take_name(r.name, name);
  });
}

void on_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  forward(req, fs::Op::kMkdir, parent, [&](fs::Request& r) {
    r.mode = mode;
    return take_name(r.name, name);
  });
}

void on_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  forward(req, fs::Op::kUnlink, parent, [&](fs::Request& r) { return take_name(r.name, name); });
}

void on_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  forward(req, fs::Op::kRmdir, parent, [&](fs::Request& r) { return take_name(r.name, name); });
}

void on_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  forward(req, fs::Op::kSymlink, parent, [&](fs::Request& r) {
    std::string_view target(link);
    if (target.empty()) return ENOENT;
    if (target.size() > fs::kMaxPath) return ENAMETOOLONG;
    r.target = target;
    return take_name(r.name, name);
  });
}

void on_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned int flags) {
  forward(req, fs::Op::kRename, parent, [&](fs::Request& r) {
    r.new_parent = newparent;
    r.flags = flags;
    if (int error = take_name(r.target, newname); error != 0) return error;
    return take_name(r.name, name);
  });
}

void on_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  forward(req, fs::Op::kLink, ino, [&](fs::Request& r) {
    r.new_parent = newparent;
    return take_name(r.name, newname);
  });
}

void on_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  forward(req, fs::Op::kOpen, ino, [&](fs::Request& r) {
    r.flags = static_cast<std::uint32_t>(fi->flags);
    return 0;
  });
}

void on_read(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off, fuse_file_info* fi) {
  forward(req, fs::Op::kRead, ino, [&](fs::Request& r) {
    r.handle = handle_of(fi);
    r.offset = static_cast<std::uint64_t>(off);
    // A short read is an answer the kernel understands; more than one frame holds is not.
    r.size = static_cast<std::uint32_t>(std::min<std::size_t>(size, fs::kMaxData));
    return 0;
  });
}

void on_write(fuse_req_t req, fuse_ino_t ino, const char* buf, std::size_t size, off_t off, fuse_file_info* fi) {
  forward(req, fs::Op::kWrite, ino, [&](fs::Request& r) {
    if (size > fs::kMaxData) return EINVAL;  // above the max_write asked for in init
    r.handle = handle_of(fi);
    r.offset = static_cast<std::uint64_t>(off);
    const auto* bytes = reinterpret_cast<const std::byte*>(buf);
    r.data.assign(bytes, bytes + size);
    return 0;
  });
}

void on_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  forward(req, fs::Op::kFlush, ino, [&](fs::Request& r) {
    r.handle = handle_of(fi);
    return 0;
  });
}

void on_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  forward(req, fs::Op::kRelease, ino, [&](fs::Request& r) {
    r.handle = handle_of(fi);
    return 0;
  });
}

void on_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  forward(req, fs::Op::kFsync, ino, [&](fs::Request& r) {
    r.handle = handle_of(fi);
    r.flags = datasync != 0 ? 1u : 0u;
    return 0;
  });
}

void on_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  forward(req, fs::Op::kOpendir, ino, [](fs::Request&) { return 0; });
}

void on_readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off, fuse_file_info* fi) {
  forward(req, fs::Op::kReaddir, ino, [&](fs::Request& r) {
    r.handle = handle_of(fi);
    r.offset = static_cast<std::uint64_t>(off);
    r.size = static_cast<std::uint32_t>(std::min<std::size_t>(size, fs::kMaxData));
    return 0;
  });
}

void on_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  forward(req, fs::Op::kReleasedir, ino, [&](fs::Request& r) {
    r.handle = handle_of(fi);
    return 0;
  });
}

void on_statfs(fuse_req_t req, fuse_ino_t ino) {
  forward(req, fs::Op::kStatfs, ino, [](fs::Request&) { return 0; });
}

void on_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  forward(req, fs::Op::kAccess, ino, [&](fs::Request& r) {
    r.flags = static_cast<std::uint32_t>(mask);
    return 0;
  });
}

void on_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  forward(req, fs::Op::kCreate, parent, [&](fs::Request& r) {
    r.mode = mode;
    r.flags = static_cast<std::uint32_t>(fi->flags);
    return take_name(r.name, name);
  });
}

void on_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  forward(req, fs::Op::kFallocate, ino, [&](fs::Request& r) {
    r.handle = handle_of(fi);
    r.mode = static_cast<std::uint32_t>(mode);
    r.offset = static_cast<std::uint64_t>(offset);
    r.length = static_cast<std::uint64_t>(length);
    return 0;
  });
}

// What is not here stays NULL and libfuse answers ENOSYS: extended
// attributes, locks (the guest kernel then keeps them locally), ioctl,
// poll, bmap, fsyncdir, copy_file_range, lseek, readdirplus.
fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = on_init;
  ops.lookup = on_lookup;
  ops.forget = on_forget;
  ops.getattr = on_getattr;
  ops.setattr = on_setattr;
  ops.readlink = on_readlink;
  ops.mknod = on_mknod;
  ops.mkdir = on_mkdir;
  ops.unlink = on_unlink;
  ops.rmdir = on_rmdir;
  ops.symlink = on_symlink;
  ops.rename = on_rename;
  ops.link = on_link;
  ops.open = on_open;
  ops.read = on_read;
  ops.write = on_write;
  ops.flush = on_flush;
  ops.release = on_release;
  ops.fsync = on_fsync;
  ops.opendir = on_opendir;
  ops.readdir = on_readdir;
  ops.releasedir = on_releasedir;
  ops.statfs = on_statfs;
  ops.access = on_access;
  ops.create = on_create;
  ops.forget_multi = on_forget_multi;
  ops.fallocate = on_fallocate;
  return ops;
}
const fuse_lowlevel_ops kOps = make_ops();

// ---- answers: the Reply's members in libfuse's shapes -----------------------

struct timespec timespec_to(const fs::Timespec& t) {
  struct timespec out {};
  out.tv_sec = static_cast<time_t>(t.sec);
  out.tv_nsec = static_cast<long>(t.nsec);
  return out;
}

struct stat stat_of(const fs::Attr& a) {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_atim = timespec_to(a.atime);
  st.st_mtim = timespec_to(a.mtime);
  st.st_ctim = timespec_to(a.ctime);
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_rdev = a.rdev;
  st.st_blksize = static_cast<blksize_t>(a.blksize);
  return st;
}

fuse_entry_param entry_of(const fs::Entry& e) {
  fuse_entry_param out{};
  out.ino = e.node;
  out.generation = e.generation;
  out.attr = stat_of(e.attr);
  out.attr_timeout = e.attr_timeout_ms / 1000.0;
  out.entry_timeout = e.entry_timeout_ms / 1000.0;
  return out;
}

fuse_file_info file_info_of(const fs::OpenFile& o) {
  fuse_file_info fi{};
  fi.fh = o.handle;
  fi.direct_io = o.direct_io ? 1 : 0;
  fi.keep_cache = o.keep_cache ? 1 : 0;
  return fi;
}

// ---- the bridge --------------------------------------------------------------

Bridge::Bridge(int port_fd, FsBridgeMode mode) : port_fd_(port_fd), mode_(mode) {
  ::fcntl(port_fd_, F_SETFL, ::fcntl(port_fd_, F_GETFL) | O_NONBLOCK);
  ::fcntl(port_fd_, F_SETFD, FD_CLOEXEC);
  ::signal(SIGPIPE, SIG_IGN);
}

Bridge::~Bridge() {
  unmount_all();
  loop_.unwatch(port_fd_);
  ::close(port_fd_);
}

void Bridge::run() {
  send(fs::Ready{});
  std::array<epoll_event, 32> events;
  while (!done_) {
    int timeout = -1;
    try {
      flush_port();
      if (done_) break;
      update_interest();
      if (port_down_) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(port_retry_at_ - Clock::now());
        timeout = static_cast<int>(std::max<std::int64_t>(0, left.count()));
      }
    } catch (const std::exception& e) {
      log(e.what());
    }
    int n = loop_.wait(events, timeout);
    if (port_down_ && Clock::now() >= port_retry_at_) port_down_ = false;
    for (int i = 0; i < n && !done_; ++i) {
      const epoll_event& ev = events[static_cast<std::size_t>(i)];
      // One mount or frame going wrong (out of memory, a mount that cannot
      // be made) must not take the others down with it.
      try {
        dispatch(ev.data.u64, ev.events);
      } catch (const std::exception& e) {
        log(e.what());
      }
    }
  }
  flush_port();
}

void Bridge::dispatch(std::uint64_t tag, std::uint32_t what) {
  if (tag == kTagPort) {
    if (what & EPOLLOUT) flush_port();
    if (!done_ && !port_down_ && (what & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_port_readable();
    return;
  }
  on_mount_readable(static_cast<std::uint32_t>(tag));
}

// Restates, after every round of events, which fds the loop waits on.
void Bridge::update_interest() {
  if (port_down_) {
    loop_.unwatch(port_fd_);
  } else {
    std::uint32_t port_events = out_.size() <= kPortReadCap ? EPOLLIN : 0u;
    if (!out_.empty()) port_events |= EPOLLOUT;
    loop_.watch(port_fd_, port_events, kTagPort);
  }
  // Not reading a mount leaves its requests queued in the kernel, where the
  // processes making them wait.
  std::uint32_t mount_events = accepting() ? EPOLLIN : 0u;
  for (auto& [id, m] : mounts_) loop_.watch(m->fd, mount_events, id);
}

void Bridge::flush_port() {
  if (port_down_ || out_.empty()) return;
  bool wrote = false;
  auto result = out_.flush(port_fd_, &wrote);
  if (wrote) connected_ = true;
  if (result == OutboundQueue::Flush::kFailed) host_gone();
}

void Bridge::on_port_readable() {
  std::array<std::byte, 65536> buf;
  for (int rounds = 0; rounds < 16 && !done_ && !port_down_; ++rounds) {
    ssize_t n = ::read(port_fd_, buf.data(), buf.size());
    if (n > 0) {
      connected_ = true;
      splitter_.feed(ByteSpan(buf.data(), static_cast<std::size_t>(n)));
      while (auto body = splitter_.next()) {
        try {
          on_frame(std::move(*body));
        } catch (const std::exception& e) {
          log(std::string("handling a frame: ") + e.what());
        }
        if (done_ || port_down_) return;
      }
      if (splitter_.failed()) {
        out_of_step();
        return;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    host_gone();  // end of stream, or an error
    return;
  }
}

void Bridge::on_frame(Bytes&& body) {
  auto frame = fs::decode_body(body);
  if (!frame) {
    log_host_error(std::string("dropped a frame that does not decode: ") + frame.error().reason);
    return;
  }
  std::visit(
      [&](auto&& f) {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, fs::Mount>) {
          on_mount(f);
        } else if constexpr (std::is_same_v<T, fs::Unmount>) {
          on_unmount(f);
        } else if constexpr (std::is_same_v<T, fs::Reply>) {
          on_reply(std::move(f));
        } else {
          log_host_error("dropped a frame only the guest sends");
        }
      },
      std::move(*frame));
}

// mkdir -p with mode 0755; 0 or the errno of the step that failed.
int make_directories(const std::string& path) {
  // A mount point left by a bridge that died answers ENOTCONN to everything;
  // detached, the directory under it is usable again.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOTCONN) ::umount2(path.c_str(), MNT_DETACH);
  for (std::size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return errno;
    if (slash == std::string::npos) break;
  }
  if (::stat(path.c_str(), &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

void Bridge::on_mount(const fs::Mount& m) {
  auto fail = [&](int error, const std::string& why) {
    log("mount " + std::to_string(m.mount_id) + " at " + m.path + ": " + why);
    send(fs::MountResult{m.mount_id, error, why});
  };
  if (mounts_.count(m.mount_id)) return fail(EEXIST, "the mount id is in use");
  if (mounts_.size() >= fs::kMaxMounts) return fail(ENOSPC, "too many mounts");
  if (m.path.empty() || m.path[0] != '/') return fail(EINVAL, "the path is not absolute");
  // Over the root, the guest would lose its own programs (and /dev/fuse).
  if (m.path.find_first_not_of('/') == std::string::npos) return fail(EINVAL, "the root cannot be a mount point");
  for (const auto& [id, other] : mounts_)
    if (other->path == m.path) return fail(EBUSY, "another mount is at this path");
  if (int error = make_directories(m.path); error != 0)
    return fail(error, std::string("cannot create the directory: ") + std::strerror(error));

  auto mp = std::make_unique<MountPoint>();
  mp->bridge = this;
  mp->id = m.mount_id;
  mp->read_only = m.read_only;
  mp->path = m.path;
  std::string options =
      "default_permissions,allow_other,fsname=sandboxd,subtype=sandboxd,max_read=" + std::to_string(fs::kMaxData) +
      (m.read_only ? ",ro" : "");
  std::array<std::string, 3> argv_strings = {"sandboxd-fs", "-o", options};
  std::array<char*, 4> argv = {argv_strings[0].data(), argv_strings[1].data(), argv_strings[2].data(), nullptr};
  fuse_args args{3, argv.data(), 0};
  mp->session = fuse_session_new(&args, &kOps, sizeof kOps, mp.get());
  fuse_opt_free_args(&args);
  if (mp->session == nullptr) return fail(EINVAL, "libfuse refused the session's options");
  errno = 0;
  if (fuse_session_mount(mp->session, m.path.c_str()) != 0) {
    int error = errno != 0 ? errno : EIO;
    fuse_session_destroy(mp->session);
    return fail(error, std::string("mount failed: ") + std::strerror(error));
  }
  mp->fd = fuse_session_fd(mp->session);
  ::fcntl(mp->fd, F_SETFL, ::fcntl(mp->fd, F_GETFL) | O_NONBLOCK);
  ::fcntl(mp->fd, F_SETFD, FD_CLOEXEC);
  mounts_[m.mount_id] = std::move(mp);
  log("mounted " + std::to_string(m.mount_id) + " at " + m.path + (m.read_only ? " (read-only)" : ""));
  send(fs::MountResult{m.mount_id, 0, ""});
}

void Bridge::on_unmount(const fs::Unmount& u) {
  if (!mounts_.count(u.mount_id)) {
    // The guest may have unmounted it already; the host cannot know.
    log_host_error("unmount of mount " + std::to_string(u.mount_id) + ", which is not mounted");
    return;
  }
  log("unmounting " + std::to_string(u.mount_id) + " at " + mounts_.at(u.mount_id)->path);
  tear_down(u.mount_id, TearDown::kUnmount);
}

void Bridge::submit(MountPoint& m, fuse_req_t req, fs::Request&& r) {
  if (m.read_only && fs::modifies(r.op)) {
    fuse_reply_err(req, EROFS);
    return;
  }
  r.unique = next_unique_++;
  r.mount_id = m.id;
  std::uint32_t size = r.op == fs::Op::kWrite ? static_cast<std::uint32_t>(r.data.size()) : r.size;
  waiting_.emplace(r.unique, Waiting{req, r.op, m.id, size});
  try {
    send(r);
  } catch (...) {
    waiting_.erase(r.unique);
    throw;
  }
}

void Bridge::forget(MountPoint& m, std::uint64_t node, std::uint64_t nlookup) {
  m.forgets.push_back({node, nlookup});
  if (m.forgets.size() >= fs::kMaxForgets) flush_forgets(m);
}

void Bridge::flush_forgets(MountPoint& m) {
  if (m.forgets.empty()) return;
  fs::Forget f{m.id, std::move(m.forgets)};
  m.forgets.clear();
  send(f);
}

void Bridge::on_reply(fs::Reply&& reply) {
  auto it = waiting_.find(reply.unique);
  if (it == waiting_.end()) {
    log_host_error("dropped a reply to request " + std::to_string(reply.unique) + ", which is not waiting");
    return;
  }
  Waiting w = it->second;
  waiting_.erase(it);
  if (reply.error != 0) {
    int error = reply.error;
    if (error < 0 || error > kMaxErrno) {
      log_host_error("a reply to " + std::string(fs::to_string(w.op)) + " with errno " + std::to_string(error) +
                     "; answered EIO");
      error = EIO;
    }
    fuse_reply_err(w.req, error);
    return;
  }
  auto body = fs::decode_reply_body(w.op, reply.body);
  if (!body) {
    log_host_error("a reply to " + std::string(fs::to_string(w.op)) + " that does not decode (" + body.error().reason +
                   "); answered EIO");
    fuse_reply_err(w.req, EIO);
    return;
  }
  try {
    answer(w, *body);
  } catch (const std::exception& e) {
    // answer() allocates before it replies, so the request is still open.
    log(std::string("answering ") + fs::to_string(w.op) + ": " + e.what());
    fuse_reply_err(w.req, ENOMEM);
  }
}

void Bridge::answer(const Waiting& w, const fs::ReplyBody& body) {
  fuse_req_t req = w.req;
  switch (w.op) {
    case fs::Op::kLookup:
    case fs::Op::kMknod:
    case fs::Op::kMkdir:
    case fs::Op::kSymlink:
    case fs::Op::kLink: {
      fuse_entry_param e = entry_of(body.entry);
      fuse_reply_entry(req, &e);
      return;
    }
    case fs::Op::kCreate: {
      fuse_entry_param e = entry_of(body.entry);
      fuse_file_info fi = file_info_of(body.open);
      fuse_reply_create(req, &e, &fi);
      return;
    }
    case fs::Op::kGetattr:
    case fs::Op::kSetattr: {
      struct stat st = stat_of(body.attr);
      fuse_reply_attr(req, &st, kAttrReplyTimeout);
      return;
    }
    case fs::Op::kReadlink:
      fuse_reply_readlink(req, body.target.c_str());
      return;
    case fs::Op::kOpen:
    case fs::Op::kOpendir: {
      fuse_file_info fi = file_info_of(body.open);
      fuse_reply_open(req, &fi);
      return;
    }
    case fs::Op::kRead: {
      // The kernel refuses an answer longer than it asked for.
      std::size_t n = std::min<std::size_t>(body.data.size(), w.size);
      if (n < body.data.size()) log_host_error("a read answered with more than was asked for; cut short");
      fuse_reply_buf(req, reinterpret_cast<const char*>(body.data.data()), n);
      return;
    }
    case fs::Op::kWrite:
      if (body.written > w.size) {
        log_host_error("a write answered with more written than was given; answered EIO");
        fuse_reply_err(req, EIO);
        return;
      }
      fuse_reply_write(req, body.written);
      return;
    case fs::Op::kReaddir: {
      // As many entries as fit in what the kernel asked for; it asks again
      // from the last one's next_offset.
      std::vector<char> buf(w.size);
      std::size_t used = 0;
      for (const fs::DirEntry& d : body.entries) {
        struct stat st {};
        st.st_ino = d.ino;
        st.st_mode = d.type & S_IFMT;
        std::size_t need = fuse_add_direntry(req, buf.data() + used, buf.size() - used, d.name.c_str(), &st,
                                             static_cast<off_t>(d.next_offset));
        if (need > buf.size() - used) break;
        used += need;
      }
      fuse_reply_buf(req, buf.data(), used);
      return;
    }
    case fs::Op::kStatfs: {
      struct statvfs sv {};
      sv.f_bsize = body.statfs.block_size;
      sv.f_frsize = body.statfs.fragment_size;
      sv.f_blocks = body.statfs.blocks;
      sv.f_bfree = body.statfs.blocks_free;
      sv.f_bavail = body.statfs.blocks_available;
      sv.f_files = body.statfs.files;
      sv.f_ffree = body.statfs.files_free;
      sv.f_favail = body.statfs.files_free;
      sv.f_namemax = body.statfs.name_max;
      fuse_reply_statfs(req, &sv);
      return;
    }
    case fs::Op::kUnlink:
    case fs::Op::kRmdir:
    case fs::Op::kRename:
    case fs::Op::kFlush:
    case fs::Op::kRelease:
    case fs::Op::kFsync:
    case fs::Op::kReleasedir:
    case fs::Op::kAccess:
    case fs::Op::kFallocate:
      fuse_reply_err(req, 0);
      return;
  }
  fuse_reply_err(req, EIO);
}

void Bridge::on_mount_readable(std::uint32_t id) {
  auto it = mounts_.find(id);
  if (it == mounts_.end()) return;
  MountPoint& m = *it->second;
  for (int rounds = 0; rounds < kRequestsPerWakeup && accepting(); ++rounds) {
    int res = fuse_session_receive_buf(m.session, &m.buf);
    if (res == -EINTR) continue;
    if (res == -EAGAIN) break;
    if (res == 0 || res == -ENODEV) {
      log("mount " + std::to_string(id) + " at " + m.path + " was unmounted in the guest");
      tear_down(id, TearDown::kGone);
      return;
    }
    if (res < 0) {
      log("reading the FUSE device of " + m.path + ": " + std::strerror(-res));
      break;
    }
    fuse_session_process_buf(m.session, &m.buf);
    if (fuse_session_exited(m.session)) {
      // libfuse ends a session whose INIT it could not agree to.
      log("the FUSE session of " + m.path + " ended");
      tear_down(id, TearDown::kGone);
      return;
    }
  }
  flush_forgets(m);
}

// Answers the mount's waiting requests with EIO (the kernel must hear about
// each before the session goes), then unmounts (lazily) and frees it.
void Bridge::tear_down(std::uint32_t id, TearDown how) {
  auto it = mounts_.find(id);
  if (it == mounts_.end()) return;
  MountPoint& m = *it->second;
  // A connection that is already gone cannot take answers; libfuse only
  // complains about failed writes on a session that has not ended.
  if (how == TearDown::kGone) fuse_session_exit(m.session);
  for (auto w = waiting_.begin(); w != waiting_.end();) {
    if (w->second.mount_id == id) {
      fuse_reply_err(w->second.req, EIO);
      w = waiting_.erase(w);
    } else {
      ++w;
    }
  }
  loop_.unwatch(m.fd);
  fuse_session_unmount(m.session);  // closes the fd; skips umount2 when the connection is gone
  fuse_session_destroy(m.session);
  std::free(m.buf.mem);
  mounts_.erase(it);
}

void Bridge::unmount_all() {
  while (!mounts_.empty()) tear_down(mounts_.begin()->first, TearDown::kUnmount);
}

// The host end went away: its answers will not come and its mounts have no
// server, so they go; in the guest a host that comes back hears Ready first.
void Bridge::host_gone() {
  if (connected_ || !mounts_.empty()) log("the host went away; unmounting everything");
  connected_ = false;
  unmount_all();
  out_.clear();
  splitter_ = fs::FrameSplitter{};
  if (mode_ == FsBridgeMode::kServeFd) {
    done_ = true;
    return;
  }
  port_down_ = true;
  port_retry_at_ = Clock::now() + kPortRetry;
  send(fs::Ready{});
}

// A frame length the protocol cannot have: what follows cannot be found in
// the stream, so this bridge ends; in the guest the agent starts another,
// whose Ready tells the host to start over.
void Bridge::out_of_step() {
  log("a frame longer than the protocol allows: the stream from the host is out of step");
  unmount_all();
  if (mode_ == FsBridgeMode::kServeFd) {
    done_ = true;
    return;
  }
  std::fflush(stderr);
  ::_exit(1);
}

// Lines about what the host got wrong: ten a second at most, so that a
// confused host cannot flood the console.
void Bridge::log_host_error(const std::string& line) {
  auto now = Clock::now();
  if (now - log_window_ >= std::chrono::seconds(1)) {
    if (log_suppressed_ > 0) log(std::to_string(log_suppressed_) + " more such lines left out");
    log_window_ = now;
    log_lines_ = 0;
    log_suppressed_ = 0;
  }
  if (log_lines_ < 10) {
    ++log_lines_;
    log(line);
  } else {
    ++log_suppressed_;
  }
}

}  // namespace

void run_fs_bridge(int port_fd, FsBridgeMode mode) {
  Bridge bridge(port_fd, mode);
  bridge.run();
}

}  // namespace sandboxd::guest
