#include "daemon/vm/writable_disk.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

extern char** environ;

namespace sandboxd::vm {

namespace {

constexpr int kChildDiskFd = 3;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Runs mke2fs on the file open at `fd`, which the child sees as fd 3 and
// opens again by its /proc path. Its complaints, if any, are the error.
Expected<void, std::string> format_ext4(int fd) {
  std::vector<std::string> argv = {
      "mke2fs", "-q", "-F", "-t", "ext4",
      // 4 KiB blocks and one inode per 16 KiB whatever the size: below
      // 512 MiB mke2fs would otherwise pick 1 KiB blocks.
      "-b", "4096", "-i", "16384",
      // No blocks reserved for root: the sandbox gets the disk_mib it asked for.
      "-m", "0",
      // The file is new and sparse, so it reads as zeros already: nothing to
      // zero or discard, which keeps a big disk's creation instant.
      "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
      "-L", "sandbox-upper",
      "/proc/self/fd/" + std::to_string(kChildDiskFd)};
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Unexpected{errno_text("pipe")};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_adddup2(&actions, fd, kChildDiskFd);
  pid_t pid = -1;
  int spawned = ::posix_spawnp(&pid, "mke2fs", &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err_pipe[1]);
  if (spawned != 0) {
    ::close(err_pipe[0]);
    return Unexpected{std::string("cannot run mke2fs (apt-get install e2fsprogs): ") + std::strerror(spawned)};
  }
  std::string said;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(err_pipe[0], buf, sizeof buf);
    if (n > 0) {
      if (said.size() < 2048) said.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
  return Unexpected{"mke2fs failed" + (said.empty() ? std::string() : ": " + said)};
}

}  // namespace

Expected<std::shared_ptr<WritableDisk>, std::string> WritableDisk::make(const std::filesystem::path& dir,
                                                                         unsigned mib) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unexpected{"disk directory " + dir.string() + ": " + ec.message()};
  ::chmod(dir.c_str(), 0700);
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return Unexpected{errno_text("disk directory " + dir.string())};
  const std::uint64_t bytes = std::uint64_t{mib} << 20;
  const std::uint64_t free_bytes = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  if (bytes > free_bytes)
    return Unexpected{"the disk directory " + dir.string() + " has " + std::to_string(free_bytes >> 20) +
                      " MiB free, less than the " + std::to_string(mib) + " MiB asked for"};
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Unexpected{errno_text("a nameless file in " + dir.string()) +
                      (errno == EOPNOTSUPP || errno == EISDIR ? " (its file system has no O_TMPFILE)" : "")};
  }
  std::shared_ptr<WritableDisk> disk(new WritableDisk(fd, mib));
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) return Unexpected{errno_text("size the disk file")};
  if (auto formatted = format_ext4(fd); !formatted) return Unexpected{formatted.error()};
  return disk;
}

WritableDisk::~WritableDisk() { ::close(fd_); }

}  // namespace sandboxd::vm
