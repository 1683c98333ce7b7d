#include "daemon/service/private_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace sandboxd::service {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int e) { return std::strerror(e); }

fs::path directory_of(const fs::path& file) {
  fs::path dir = file.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Writes `content` to a new file beside `file`. The name is unique per
// process and call, so concurrent writers (threads or daemons) never share a
// temporary file.
Expected<fs::path, std::string> write_temporary(const fs::path& file, std::string_view content) {
  static std::atomic<unsigned> counter{0};
  fs::path tmp = directory_of(file) / (file.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(counter.fetch_add(1)));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Unexpected{"cannot create " + tmp.string() + ": " + errno_text(errno)};
  bool ok = write_all(fd, content) && ::fsync(fd) == 0;
  int e = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return Unexpected{"cannot write " + tmp.string() + ": " + errno_text(e)};
  }
  return tmp;
}

}  // namespace

Expected<void, std::string> make_private_dirs(const fs::path& dir) {
  if (dir.empty()) return Unexpected{std::string("empty directory path")};
  fs::path at;
  for (const auto& part : dir) {
    at /= part;
    if (part == at.root_path() || part.empty() || part == ".") continue;
    if (::mkdir(at.c_str(), 0700) == 0) continue;
    int e = errno;
    struct stat st {};
    if (e == EEXIST && ::stat(at.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) continue;
      return Unexpected{at.string() + " exists and is not a directory"};
    }
    return Unexpected{"cannot create directory " + at.string() + ": " + errno_text(e)};
  }
  return {};
}

Expected<FileContent, FileError> read_small_file(const fs::path& file, std::size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused.
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    return Unexpected{FileError{e, "cannot open " + file.string() + ": " + errno_text(e)}};
  }
  FileContent out;
  if (::fstat(fd, &out.info) != 0) {
    int e = errno;
    ::close(fd);
    return Unexpected{FileError{e, "cannot stat " + file.string() + ": " + errno_text(e)}};
  }
  if (!S_ISREG(out.info.st_mode)) {
    ::close(fd);
    return Unexpected{FileError{0, file.string() + " is not a regular file"}};
  }
  const std::string too_large = file.string() + " is larger than " + std::to_string(max_bytes) + " bytes";
  if (static_cast<std::uintmax_t>(out.info.st_size) > max_bytes) {
    ::close(fd);
    return Unexpected{FileError{0, too_large}};
  }
  // The size may change while reading; one byte more than allowed is enough
  // to know the file is too large.
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return Unexpected{FileError{e, "cannot read " + file.string() + ": " + errno_text(e)}};
    }
    if (n == 0) break;
    out.bytes.append(buf, static_cast<std::size_t>(n));
    if (out.bytes.size() > max_bytes) {
      ::close(fd);
      return Unexpected{FileError{0, too_large}};
    }
  }
  ::close(fd);
  return out;
}

Expected<void, std::string> replace_file(const fs::path& file, std::string_view content) {
  auto tmp = write_temporary(file, content);
  if (!tmp) return Unexpected{tmp.error()};
  if (::rename(tmp->c_str(), file.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp->c_str());
    return Unexpected{"cannot rename " + tmp->string() + " to " + file.string() + ": " + errno_text(e)};
  }
  sync_directory(directory_of(file));
  return {};
}

Expected<bool, std::string> create_file_exclusively(const fs::path& file, std::string_view content) {
  // link() is rename() that refuses to replace: the file appears complete or
  // not at all, and of two concurrent creators exactly one succeeds.
  auto tmp = write_temporary(file, content);
  if (!tmp) return Unexpected{tmp.error()};
  int r = ::link(tmp->c_str(), file.c_str());
  int e = errno;
  ::unlink(tmp->c_str());
  if (r == 0) {
    sync_directory(directory_of(file));
    return true;
  }
  if (e == EEXIST) return false;
  return Unexpected{"cannot create " + file.string() + ": " + errno_text(e)};
}

void sync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace sandboxd::service
