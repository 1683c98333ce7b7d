#include "guest/file_tool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>  // the new mount API's FSCONFIG_* and FSPICK_*
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>  // RENAME_NOREPLACE
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/file_entry.hpp"
#include "protocol/write_fully.hpp"

namespace sandboxd::guest {

namespace {

using Args = std::vector<std::string>;
using protocol::FileEntry;
using protocol::FileKind;

// What an operation returns when its arguments do not parse: run_file_tool
// prints the operation's usage and exits with EINVAL.
constexpr int kBadArguments = -1;

constexpr std::size_t kCopyBuffer = 256u << 10;
constexpr std::uint64_t kMaxListLimit = 1000000;
// Deeper than any real tree; a deeper one fails instead of walking on until
// the stack or the descriptors run out.
constexpr int kMaxRemoveDepth = 4096;

// Writes `line` on stderr; returns `error`, the exit status.
int complain(std::string line, int error) {
  line += '\n';
  (void)write_fully(2, as_bytes(line));
  return error == 0 ? EIO : error;  // a status of 0 would read as success
}

// "OPERATION SUBJECT: REASON", the reason by default the error's.
int fail(std::string_view operation, std::string_view subject, int error, std::string_view reason = {}) {
  std::string line(operation);
  line.append(" ").append(subject).append(": ").append(reason.empty() ? std::strerror(error) : reason);
  return complain(std::move(line), error);
}

int fail_errno(std::string_view operation, std::string_view subject) { return fail(operation, subject, errno); }

// Sends bytes on stdout; 0 or the failure's status.
int send(std::string_view operation, std::string_view subject, ByteSpan data) {
  if (write_fully(1, data)) return 0;
  int error = errno;
  return fail(operation, subject, error, std::string("writing stdout: ") + std::strerror(error));
}

// Closes a descriptor on every return; release() hands it over to a close
// whose error counts.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

using Directory = std::unique_ptr<DIR, int (*)(DIR*)>;

std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t max) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (digit > max || v > (max - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

std::optional<mode_t> parse_mode(std::string_view s) {
  if (s.empty()) return std::nullopt;
  mode_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return std::nullopt;
    v = v * 8 + static_cast<mode_t>(c - '0');
    if (v > 07777) return std::nullopt;
  }
  return v;
}

std::optional<bool> parse_flag(std::string_view s) {
  if (s == "0") return false;
  if (s == "1") return true;
  return std::nullopt;
}

std::string_view without_trailing_slashes(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return path;
}

// The name `stat` reports: the last component, "/" for the root.
std::string last_component(std::string_view path) {
  path = without_trailing_slashes(path);
  if (path == "/") return "/";
  auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string child_path(std::string_view dir, std::string_view name) {
  std::string path(dir);
  if (path.empty() || path.back() != '/') path += '/';
  return path.append(name);
}

FileEntry entry_of(const struct stat& st, std::string name) {
  FileEntry e;
  e.kind = S_ISREG(st.st_mode)   ? FileKind::kFile
           : S_ISDIR(st.st_mode) ? FileKind::kDirectory
           : S_ISLNK(st.st_mode) ? FileKind::kSymlink
                                 : FileKind::kOther;
  e.mode = st.st_mode & 07777;
  e.size = static_cast<std::uint64_t>(st.st_size);
  e.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.name = std::move(name);
  return e;
}

// A symlink's target into `target`; 0 or an errno value.
int read_link(int dir_fd, const char* path, std::string& target) {
  char buf[protocol::kMaxLinkTarget + 1];
  ssize_t n = ::readlinkat(dir_fd, path, buf, sizeof buf);
  if (n < 0) return errno;
  // Linux stores at most 4095 bytes; a filesystem that gives more is refused
  // rather than sent cut.
  if (static_cast<std::size_t>(n) > protocol::kMaxLinkTarget) return ENAMETOOLONG;
  target.assign(buf, static_cast<std::size_t>(n));
  return 0;
}

int op_stat(const Args& a) {
  const std::string& path = a[1];
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return fail_errno("stat", path);
  FileEntry e = entry_of(st, last_component(path));
  if (e.kind == FileKind::kSymlink)
    if (int error = read_link(AT_FDCWD, path.c_str(), e.target)) return fail("stat", path, error);
  Bytes out;
  protocol::encode_file_entry(e, out);
  return send("stat", path, out);
}

int op_list(const Args& a) {
  const std::string& path = a[1];
  auto limit = parse_decimal(a[2], kMaxListLimit);
  if (!limit) return kBadArguments;
  Directory dir(::opendir(path.c_str()), &::closedir);
  if (!dir) return fail_errno("list", path);
  Bytes out;
  std::uint64_t records = 0;
  while (records <= *limit) {
    errno = 0;
    const dirent* de = ::readdir(dir.get());
    if (!de) {
      if (errno != 0) return fail_errno("list", path);
      break;
    }
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(::dirfd(dir.get()), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed since readdir saw it
      return fail_errno("list", child_path(path, name));
    }
    FileEntry e = entry_of(st, std::string(name));
    if (e.kind == FileKind::kSymlink) {
      int error = read_link(::dirfd(dir.get()), de->d_name, e.target);
      if (error == ENOENT) continue;
      if (error != 0) return fail("list", child_path(path, name), error);
    }
    protocol::encode_file_entry(e, out);
    ++records;
    // A listing of a million entries is not held whole.
    if (out.size() >= kCopyBuffer) {
      if (int status = send("list", path, out)) return status;
      out.clear();
    }
  }
  return send("list", path, out);
}

// The missing directories above `path`, like `mkdir -p`: 0777 less the umask.
int make_parents(std::string_view path) {
  for (std::size_t i = path.find('/', 1); i != std::string_view::npos; i = path.find('/', i + 1)) {
    if (path[i - 1] == '/') continue;
    std::string prefix(path.substr(0, i));
    if (::mkdir(prefix.c_str(), 0777) == 0 || errno == EEXIST) continue;
    // EACCES or EROFS for a directory that is already there is no failure.
    int error = errno;
    struct stat st {};
    if (::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    return fail("mkdir", prefix, error);
  }
  return 0;
}

int op_mkdir(const Args& a) {
  const std::string& path = a[1];
  auto mode = parse_mode(a[2]);
  auto parents = parse_flag(a[3]);
  if (!mode || !parents) return kBadArguments;
  if (*parents)
    if (int status = make_parents(path)) return status;
  if (::mkdir(path.c_str(), *mode) != 0) {
    int error = errno;
    struct stat st {};
    if (error == EEXIST && *parents && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return fail("mkdir", path, error);
  }
  // mkdir(2) takes the umask off and ignores the set-id bits; the host asked
  // for exactly MODE, as `mkdir -m` gives it.
  if (::chmod(path.c_str(), *mode) != 0) return fail_errno("mkdir", path);
  return 0;
}

// Removes everything in the directory open as `fd` (taken over), depth
// first. A directory is opened with O_NOFOLLOW, so a symlink to one is
// unlinked, never walked into. Stops at the first failure.
int remove_contents(int fd, const std::string& path, int depth) {
  Directory dir(::fdopendir(fd), &::closedir);
  if (!dir) {
    int error = errno;
    ::close(fd);
    return fail("remove", path, error);
  }
  const int dir_fd = ::dirfd(dir.get());
  for (;;) {
    errno = 0;
    const dirent* de = ::readdir(dir.get());
    if (!de) return errno == 0 ? 0 : fail_errno("remove", path);
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN) {
      int sub = ::openat(dir_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        std::string sub_path = child_path(path, name);
        if (depth >= kMaxRemoveDepth) {
          ::close(sub);
          return fail("remove", sub_path, ELOOP, "more than 4096 directories deep");
        }
        if (int status = remove_contents(sub, sub_path, depth + 1)) return status;
        if (::unlinkat(dir_fd, de->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
          return fail_errno("remove", sub_path);
        continue;
      }
      if (errno == ENOENT) continue;
      // Not a directory after all (a symlink gives ELOOP): unlinked below.
      if (errno != ENOTDIR && errno != ELOOP) return fail_errno("remove", child_path(path, name));
    }
    if (::unlinkat(dir_fd, de->d_name, 0) != 0 && errno != ENOENT) return fail_errno("remove", child_path(path, name));
  }
}

int op_remove(const Args& a) {
  // "link/" would name the directory a symlink points to; remove means the link.
  const std::string path(without_trailing_slashes(a[1]));
  auto recursive = parse_flag(a[2]);
  if (!recursive) return kBadArguments;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return fail_errno("remove", path);
  if (!S_ISDIR(st.st_mode)) return ::unlink(path.c_str()) == 0 ? 0 : fail_errno("remove", path);
  if (*recursive) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_errno("remove", path);
    if (int status = remove_contents(fd, path, 1)) return status;
  }
  return ::rmdir(path.c_str()) == 0 ? 0 : fail_errno("remove", path);
}

int op_rename(const Args& a) {
  const std::string& from = a[1];
  const std::string& to = a[2];
  auto overwrite = parse_flag(a[3]);
  if (!overwrite) return kBadArguments;
  const std::string subject = from + " to " + to;
  if (*overwrite) return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : fail_errno("rename", subject);
  // Called by number: the static agent may be linked against a libc without
  // the renameat2 wrapper.
  if (::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return fail_errno("rename", subject);
  // A filesystem without RENAME_NOREPLACE: check, then rename. Something that
  // creates TO in between is overwritten; nothing better is available there.
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) return fail("rename", subject, EEXIST);
  if (errno != ENOENT) return fail_errno("rename", subject);
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : fail_errno("rename", subject);
}

int op_chmod(const Args& a) {
  const std::string& path = a[1];
  auto mode = parse_mode(a[2]);
  if (!mode) return kBadArguments;
  return ::chmod(path.c_str(), *mode) == 0 ? 0 : fail_errno("chmod", path);
}

int op_read(const Args& a) {
  const std::string& path = a[1];
  // O_NONBLOCK: a FIFO would otherwise block the open until it has a writer,
  // before fstat could refuse it.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return fail_errno("read", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("read", path);
  if (S_ISDIR(st.st_mode)) return fail("read", path, EISDIR);
  if (!S_ISREG(st.st_mode)) return fail("read", path, EINVAL, "not a regular file");
  if (::fcntl(fd.get(), F_SETFL, 0) != 0) return fail_errno("read", path);

  // The size at open is the promise: a file that grows is sent up to it.
  const auto size = static_cast<std::uint64_t>(st.st_size);
  Bytes header;
  ByteWriter(header).u64(size);
  if (int status = send("read", path, header)) return status;
  std::vector<std::byte> buf(kCopyBuffer);
  for (std::uint64_t left = size; left > 0;) {
    ssize_t n = ::read(fd.get(), buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read", path);
    if (n == 0) return fail("read", path, EIO, "file shrank while it was read");
    if (int status = send("read", path, ByteSpan(buf.data(), static_cast<std::size_t>(n)))) return status;
    left -= static_cast<std::uint64_t>(n);
  }
  return 0;
}

// Gives the new file its mode and exactly `size` bytes of stdin, then closes
// it (taken over); 0 or the failure's status.
int fill_upload(int raw_fd, const std::string& path, std::uint64_t size, mode_t mode) {
  Fd fd(raw_fd);
  // mkostemp made it 0600; fchmod, unlike creating, ignores the umask.
  if (::fchmod(fd.get(), mode) != 0) return fail_errno("write", path);
  std::vector<std::byte> buf(kCopyBuffer);
  for (std::uint64_t left = size; left > 0;) {
    ssize_t n = ::read(0, buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      return fail("write", path, error, std::string("reading stdin: ") + std::strerror(error));
    }
    if (n == 0)
      return fail("write", path, ECANCELED,
                  "stdin ended after " + std::to_string(size - left) + " of " + std::to_string(size) + " bytes");
    if (!write_fully(fd.get(), ByteSpan(buf.data(), static_cast<std::size_t>(n)))) return fail_errno("write", path);
    left -= static_cast<std::uint64_t>(n);
  }
  // Write-back errors (ENOSPC, EIO on a network filesystem) may only show here.
  if (::close(fd.release()) != 0) return fail_errno("write", path);
  return 0;
}

int op_write(const Args& a) {
  const std::string& path = a[1];
  auto size = parse_decimal(a[2], UINT64_MAX);
  const bool keep_mode = a[3] == "-";
  auto mode = keep_mode ? std::optional<mode_t>(0644) : parse_mode(a[3]);
  if (!size || !mode) return kBadArguments;

  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return fail("write", path, EISDIR);
    if (keep_mode) mode = st.st_mode & 07777;
  } else if (errno != ENOENT) {
    return fail_errno("write", path);
  }

  // Beside PATH, so the rename stays on one filesystem and is atomic.
  const std::string_view trimmed = without_trailing_slashes(path);
  const auto slash = trimmed.rfind('/');
  std::string temp(slash == std::string_view::npos ? std::string_view() : trimmed.substr(0, slash + 1));
  // NAME is cut so that a name near NAME_MAX can still be uploaded.
  constexpr std::string_view kSuffix = ".upload-XXXXXX";
  temp.append(".").append(last_component(trimmed).substr(0, NAME_MAX - 1 - kSuffix.size())).append(kSuffix);
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return fail_errno("write", path);

  int status = fill_upload(fd, path, *size, *mode);
  if (status == 0 && ::rename(temp.c_str(), path.c_str()) != 0) status = fail_errno("write", path);
  if (status != 0) ::unlink(temp.c_str());
  return status;
}

// The file system that holds PATH: its size, what is used and what the
// user may still write, in bytes.
int op_statfs(const Args& a) {
  const std::string& path = a[1];
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) return fail_errno("statfs", path);
  std::uint64_t unit = fs.f_frsize ? fs.f_frsize : fs.f_bsize;
  Bytes out;
  ByteWriter w(out);
  w.u64(fs.f_blocks * unit);
  w.u64((fs.f_blocks - std::min(fs.f_bfree, fs.f_blocks)) * unit);
  w.u64(fs.f_bavail * unit);
  return send("statfs", path, out);
}

// Sets the size of the tmpfs mounted at PATH to MIB. fspick reconfigures
// the superblock alone: a remount through mount(2) would also reset the
// flags of the mount it names (the writable layer is seen read-only at
// /run/sandbox/upper, and must stay so).
int op_resize(const Args& a) {
  const std::string& path = a[1];
  auto mib = parse_decimal(a[2], 1u << 30);
  if (!mib || *mib == 0) return kBadArguments;
  int fd = static_cast<int>(::syscall(SYS_fspick, AT_FDCWD, path.c_str(), FSPICK_CLOEXEC));
  if (fd < 0) return fail_errno("resize", path);
  Fd picked(fd);
  std::string size = std::to_string(*mib) + "m";
  if (::syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, "size", size.c_str(), 0) != 0 ||
      ::syscall(SYS_fsconfig, fd, FSCONFIG_CMD_RECONFIGURE, nullptr, nullptr, 0) != 0) {
    int error = errno;
    return fail("resize", path, error,
                error == EINVAL ? "not a tmpfs, or smaller than what it holds already" : std::strerror(error));
  }
  return 0;
}

struct Operation {
  std::string_view name;
  std::size_t arguments;
  std::string_view usage;
  int (*run)(const Args&);
};

constexpr Operation kOperations[] = {
    {"stat", 1, "stat PATH", op_stat},
    {"list", 2, "list PATH LIMIT (LIMIT decimal, at most 1000000)", op_list},
    {"mkdir", 3, "mkdir PATH MODE PARENTS (MODE octal, at most 7777; PARENTS 0 or 1)", op_mkdir},
    {"remove", 2, "remove PATH RECURSIVE (RECURSIVE 0 or 1)", op_remove},
    {"rename", 3, "rename FROM TO OVERWRITE (OVERWRITE 0 or 1)", op_rename},
    {"chmod", 2, "chmod PATH MODE (MODE octal, at most 7777)", op_chmod},
    {"read", 1, "read PATH", op_read},
    {"write", 3, "write PATH SIZE MODE (SIZE decimal; MODE octal, at most 7777, or -)", op_write},
    {"statfs", 1, "statfs PATH", op_statfs},
    {"resize", 2, "resize PATH MIB (MIB decimal, 1..2^30)", op_resize},
};

const Operation* find_operation(std::string_view name) {
  for (const auto& op : kOperations)
    if (op.name == name) return &op;
  return nullptr;
}

}  // namespace

bool file_tool_knows(std::string_view operation) { return find_operation(operation) != nullptr; }

int run_file_tool(const std::vector<std::string>& argv) {
  const Operation* op = argv.empty() ? nullptr : find_operation(argv[0]);
  if (!op) return complain("file tool: no operation '" + (argv.empty() ? std::string() : argv[0]) + "'", EINVAL);
  int status = argv.size() == op->arguments + 1 ? op->run(argv) : kBadArguments;
  if (status == kBadArguments) return complain(std::string("usage: ").append(op->usage), EINVAL);
  return status;
}

}  // namespace sandboxd::guest
