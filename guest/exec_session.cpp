#include "guest/exec_session.hpp"

#include <fcntl.h>
#include <signal.h>
#include <grp.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "guest/file_tool.hpp"
#include "guest/path_lookup.hpp"
#include "guest/user_account.hpp"

namespace sandboxd::guest {
using namespace sandboxd::protocol;

namespace {

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

Exit start_failure(std::uint32_t id, const std::string& name, int error) {
  Exit e;
  e.id = id;
  e.kind = ExitKind::kStartFailed;
  e.status = error == ENOENT ? 127 : 126;
  e.message = "cannot run '" + name + "': " + std::strerror(error);
  return e;
}

bool set_window_size(int master, std::uint16_t cols, std::uint16_t rows) {
  winsize ws{};
  ws.ws_col = cols;
  ws.ws_row = rows;
  return ::ioctl(master, TIOCSWINSZ, &ws) == 0;
}

// A new pseudo-terminal: returns its master (close-on-exec, already sized, so
// the process never sees a 0x0 window) and sets `slave_path`; -1 and errno
// on failure.
int open_terminal(const Terminal& size, std::string& slave_path) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0) return -1;
  char name[64];
  if (::fcntl(master, F_SETFD, FD_CLOEXEC) != 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0 ||
      ::ptsname_r(master, name, sizeof name) != 0 || !set_window_size(master, size.cols, size.rows)) {
    int e = errno;
    ::close(master);
    errno = e;
    return -1;
  }
  slave_path = name;
  return master;
}

// A passwd or group file, read whole up to a bound (a bigger one is cut:
// the accounts past it are not found).
// Read with plain read(2) into a buffer that grows as needed: every exec
// reads both files, and under TCG a bound-sized buffer or a stream costs
// milliseconds each time.
std::string read_account_file(const char* path) {
  constexpr std::size_t kMaxAccountFile = 4u << 20;
  std::string text;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char piece[8192];
  while (text.size() < kMaxAccountFile) {
    ssize_t n = ::read(fd, piece, std::min(sizeof piece, kMaxAccountFile - text.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(piece, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

// Where the child of spawn_as failed, with its errno, sent over a close-on-exec
// pipe: nothing arrives when execve succeeded.
struct ChildFailure {
  enum Step : int { kIdentity = 1, kWorkdir = 2, kExec = 3, kTerminal = 4 } step;
  int error;
};

[[noreturn]] void child_fail(int report_fd, ChildFailure::Step step) {
  ChildFailure f{step, errno};
  (void)!::write(report_fd, &f, sizeof f);
  ::_exit(127);
}

// The fork-and-exec that posix_spawn cannot do: it has no way to change the
// user. Used for every account but root, and for every builtin. The agent has
// one thread, so the child may do what it likes before execve; everything it
// needs is prepared before the fork, so it allocates nothing. With `builtin`
// set, the child runs the file tool on those arguments instead of execve
// (that allocates, which one thread makes safe too). Returns 0 or sets
// `failure`.
int spawn_as(const UserAccount& account, const std::string& program, char* const* argv, char* const* envp,
             const char* cwd, bool pty, const char* slave_path, int stdin_fd, int out_fd, int err_fd, pid_t& pid,
             ChildFailure& failure, const std::vector<std::string>* builtin = nullptr) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return errno;
  pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(report[0]);
    ::close(report[1]);
    return e;
  }
  if (pid == 0) {
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (pty) {
      if (::setsid() < 0) child_fail(report[1], ChildFailure::kTerminal);
      int slave = ::open(slave_path, O_RDWR);  // the new session's controlling terminal
      if (slave < 0) child_fail(report[1], ChildFailure::kTerminal);
      for (int fd = 0; fd < 3; ++fd)
        if (slave != fd && ::dup2(slave, fd) < 0) child_fail(report[1], ChildFailure::kTerminal);
      if (slave > 2) ::close(slave);
    } else {
      ::setpgid(0, 0);
      int in = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0)
        child_fail(report[1], ChildFailure::kTerminal);
    }
    if (::setgroups(account.groups.size(), account.groups.data()) != 0 || ::setgid(account.gid) != 0 ||
        ::setuid(account.uid) != 0)
      child_fail(report[1], ChildFailure::kIdentity);
    // As the user: a directory the user may not enter is an error here too.
    if (::chdir(cwd) != 0) child_fail(report[1], ChildFailure::kWorkdir);
    if (builtin) {
      // No execve closes the agent's descriptors here, and held open they
      // would keep pipes from ending: this exec's own stdin (in[1]), other
      // execs' pipes. The report pipe goes too: the start succeeded.
      if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
        for (long fd = 3, max = ::sysconf(_SC_OPEN_MAX); fd < max; ++fd) ::close(static_cast<int>(fd));
      ::_exit(run_file_tool(*builtin));
    }
    ::execve(program.c_str(), argv, envp);
    child_fail(report[1], ChildFailure::kExec);
  }
  ::close(report[1]);
  ssize_t n;
  do {
    n = ::read(report[0], &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n != static_cast<ssize_t>(sizeof failure)) return 0;  // exec'd
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  pid = -1;
  return -1;
}

// What may still be read from a terminal after the reap. FIONREAD is no
// measure there: it leaves out what the kernel has not yet moved to the
// master's read side. A read that finds nothing has moved all of it first,
// so the loop reads until empty (or EIO); this only bounds a background child
// that keeps writing, at more than a terminal's buffers hold.
constexpr std::size_t kTerminalDrain = 4u << 20;

}  // namespace

ExecSession::~ExecSession() {
  close_output(0);
  close_output(1);
  (void)close_stdin();
}

ExecSession::StartResult ExecSession::start(const ExecStart& request) {
  const bool builtin = request.builtin == Builtin::kFileTool;
  if (builtin && !file_tool_knows(request.argv[0])) {
    Exit x = start_failure(id_, request.argv[0], ENOENT);
    x.message = "no builtin '" + request.argv[0] + "'";
    return {false, x};
  }
  auto account = resolve_account(read_account_file("/etc/passwd"), read_account_file("/etc/group"), request.user);
  if (!account) {
    Exit x = start_failure(id_, request.argv[0], EPERM);
    x.message = "cannot run '" + request.argv[0] + "': " + account.error();
    return {false, x};
  }
  std::vector<std::string> env = request.env;
  if (env.empty()) env = {std::string("PATH=") + kDefaultPath};
  env = with_account_env(std::move(env), *account);
  // Root keeps the posix_spawn path (and the agent's own groups), but for a
  // builtin, which only a fork can run.
  const bool as_root = account->uid == 0 && account->gid == 0 && !builtin;
  Lookup program;
  if (!builtin) {
    program = find_executable(request.argv[0], path_of(env));
    if (program.path.empty()) return {false, start_failure(id_, request.argv[0], program.error)};
  }

  // Our ends are in[1], out[0] and err[0]; with a terminal, out[0] is the
  // master and in[1] a dup of it, and the other ends stay -1. A builtin never
  // has a terminal: its stdout carries records and file contents.
  pty_ = request.pty.has_value() && !builtin;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  std::string slave_path;
  auto close_all = [&] {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]})
      if (fd >= 0) ::close(fd);
  };
  bool fds_ok;
  if (pty_) {
    fds_ok = (out[0] = open_terminal(*request.pty, slave_path)) >= 0;
    if (fds_ok && request.stdin_open) fds_ok = (in[1] = ::fcntl(out[0], F_DUPFD_CLOEXEC, 0)) >= 0;
  } else {
    fds_ok = ::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0;
    if (fds_ok && request.stdin_open) fds_ok = ::pipe2(in, O_CLOEXEC) == 0;
    // A larger pipe lets a fast writer run longer between reads.
    if (fds_ok) ::fcntl(out[1], F_SETPIPE_SZ, 1 << 20);
  }
  if (!fds_ok) {
    int e = errno;
    close_all();
    Exit x = start_failure(id_, request.argv[0], e);
    x.status = 126;
    return {false, x};
  }

  const char* cwd = request.cwd.empty() ? "/" : request.cwd.c_str();
  if (!as_root) {
    auto argv = c_strings(request.argv);
    auto envp = c_strings(env);
    ChildFailure failure{};
    int rc = spawn_as(*account, program.path, argv.data(), envp.data(), cwd, pty_, slave_path.c_str(),
                      request.stdin_open ? in[0] : -1, out[1], err[1], pid_, failure,
                      builtin ? &request.argv : nullptr);
    if (rc != 0) {
      close_all();
      pid_ = -1;
      Exit x = start_failure(id_, request.argv[0], rc > 0 ? rc : failure.error);
      if (rc < 0 && failure.step != ChildFailure::kExec) {
        const char* what = failure.step == ChildFailure::kIdentity  ? "becoming user '"
                           : failure.step == ChildFailure::kWorkdir ? "entering working directory '"
                                                                     : "setting up its stdio for '";
        std::string subject = failure.step == ChildFailure::kIdentity  ? account->name
                              : failure.step == ChildFailure::kWorkdir ? std::string(cwd)
                                                                        : request.argv[0];
        x.status = 126;
        x.message = "cannot run '" + request.argv[0] + "': " + what + subject + "': " + std::strerror(failure.error);
      }
      return {false, x};
    }
    return finish_start(request, in, out, err);
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (pty_) {
    // Opened without O_NOCTTY by a session leader that has no controlling
    // terminal yet (POSIX_SPAWN_SETSID below runs first), the slave becomes
    // the controlling terminal, with the new session as its foreground group.
    posix_spawn_file_actions_addopen(&actions, 0, slave_path.c_str(), O_RDWR, 0);
    posix_spawn_file_actions_adddup2(&actions, 0, 1);
    posix_spawn_file_actions_adddup2(&actions, 0, 2);
  } else {
    if (request.stdin_open) posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    else posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  }
  posix_spawn_file_actions_addchdir_np(&actions, cwd);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  // Either way the process leads its own group, which Signal reaches; a
  // terminal needs a whole session (a session leader cannot also setpgid).
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                      (pty_ ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP));

  auto argv = c_strings(request.argv);
  auto envp = c_strings(env);
  int rc = ::posix_spawn(&pid_, program.path.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    close_all();
    pid_ = -1;
    Exit x = start_failure(id_, request.argv[0], rc);
    // A missing working directory is not a missing program.
    if (rc == ENOENT && ::access(request.cwd.empty() ? "/" : request.cwd.c_str(), F_OK) != 0) {
      x.status = 126;
      x.message = "cannot run '" + request.argv[0] + "': working directory '" + request.cwd + "' does not exist";
    }
    return {false, x};
  }
  return finish_start(request, in, out, err);
}

ExecSession::StartResult ExecSession::finish_start(const ExecStart& request, const int in[2], const int out[2],
                                                   const int err[2]) {
  for (int fd : {out[1], err[1], in[0]})
    if (fd >= 0) ::close(fd);
  out_fd_[0] = out[0];
  out_fd_[1] = err[0];
  stdin_fd_ = in[1];
  for (int fd : {out_fd_[0], out_fd_[1], stdin_fd_})
    if (fd >= 0) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  stdin_accepting_ = request.stdin_open;
  return {true, {}};
}

void ExecSession::close_output(int i) {
  if (out_fd_[i] >= 0) ::close(out_fd_[i]);
  out_fd_[i] = -1;
}

void ExecSession::output_sent(std::size_t n) { unacked_output_ += n; }

bool ExecSession::output_acked(std::uint32_t n) {
  if (n > unacked_output_) {
    unacked_output_ = 0;
    return false;
  }
  unacked_output_ -= n;
  return true;
}

ExecSession::StdinQueued ExecSession::queue_stdin(const Bytes& data, bool eof) {
  StdinQueued result;
  if (!stdin_accepting_ || stdin_fd_ < 0) {
    result.discarded = static_cast<std::uint32_t>(data.size());
  } else {
    if (stdin_off_ > 0 && stdin_off_ == stdin_queue_.size()) {
      stdin_queue_.clear();
      stdin_off_ = 0;
    }
    std::size_t pending = stdin_queue_.size() - stdin_off_;
    std::size_t room = pending >= kStdinWindow ? 0 : kStdinWindow - pending;
    std::size_t take = std::min(room, data.size());
    stdin_queue_.insert(stdin_queue_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
    result.discarded = static_cast<std::uint32_t>(data.size() - take);
    result.over_window = result.discarded;
  }
  if (eof) {
    stdin_accepting_ = false;
    stdin_eof_ = true;
  }
  return result;
}

std::uint32_t ExecSession::flush_stdin() {
  std::uint32_t written = 0;
  while (stdin_fd_ >= 0 && !stdin_failed_ && stdin_off_ < stdin_queue_.size()) {
    ssize_t n = ::write(stdin_fd_, stdin_queue_.data() + stdin_off_, stdin_queue_.size() - stdin_off_);
    if (n > 0) {
      stdin_off_ += static_cast<std::size_t>(n);
      written += static_cast<std::uint32_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return written;
    } else {
      // The process closed its stdin (EPIPE): close_stdin() acknowledges
      // what it will never read, or the host would wait for credit forever.
      stdin_failed_ = true;
    }
  }
  if (pty_ && stdin_eof_ && !veof_written_ && stdin_fd_ >= 0 && !stdin_failed_) write_veof();
  return written;
}

// A terminal has no half-close: closing the master would hang up the whole
// session and lose what the process still writes. The end of input a terminal
// knows is its VEOF character, which makes a read at the start of a line
// return 0, as a user's ^D does.
void ExecSession::write_veof() {
  struct termios t {};
  cc_t c = ::tcgetattr(stdin_fd_, &t) == 0 ? t.c_cc[VEOF] : CEOF;
  // The process disabled it: there is no end-of-file to send.
  if (c == _POSIX_VDISABLE) {
    veof_written_ = true;
    return;
  }
  for (;;) {
    ssize_t n = ::write(stdin_fd_, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // stdin_pending() keeps the loop waiting to write
    if (n == 1) veof_written_ = true;
    else stdin_failed_ = true;
    return;
  }
}

bool ExecSession::stdin_finished() const {
  return stdin_failed_ || (stdin_eof_ && !stdin_pending());
}

std::uint32_t ExecSession::close_stdin() {
  auto dropped = static_cast<std::uint32_t>(stdin_queue_.size() - stdin_off_);
  stdin_queue_.clear();
  stdin_off_ = 0;
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
  stdin_accepting_ = false;
  return dropped;
}

std::uint32_t ExecSession::set_reaped(int wait_status, const struct rusage& usage) {
  reaped_ = true;
  wait_status_ = wait_status;
  usage_ = usage;
  // Nobody is left to read stdin (a background child could, but the exec is
  // over for the host once its process is).
  for (int i = 0; i < 2; ++i) {
    int queued = 0;
    if (out_fd_[i] >= 0 && pty_) budget_[i] = kTerminalDrain;
    else budget_[i] = out_fd_[i] >= 0 && ::ioctl(out_fd_[i], FIONREAD, &queued) == 0 ? static_cast<std::size_t>(queued) : 0;
  }
  return close_stdin();
}

Exit ExecSession::exit_message() const {
  Exit e;
  e.id = id_;
  if (WIFSIGNALED(wait_status_)) {
    e.kind = ExitKind::kSignaled;
    e.status = WTERMSIG(wait_status_);
  } else {
    e.kind = ExitKind::kExited;
    e.status = WEXITSTATUS(wait_status_);
  }
  auto usec = [](const timeval& t) {
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000u + static_cast<std::uint64_t>(t.tv_usec);
  };
  e.user_usec = usec(usage_.ru_utime);
  e.system_usec = usec(usage_.ru_stime);
  e.max_rss_kib = static_cast<std::uint64_t>(usage_.ru_maxrss);
  return e;
}

bool ExecSession::resize(std::uint16_t cols, std::uint16_t rows) {
  if (!pty_) return false;
  // Either dup of the master will do; with both closed the exec is ending and
  // there is no terminal left to size.
  int master = out_fd_[0] >= 0 ? out_fd_[0] : stdin_fd_;
  if (master >= 0) set_window_size(master, cols, rows);
  return true;
}

void ExecSession::signal(int signo) {
  if (pid_ <= 0) return;
  // Once reaped, the pid may be reused, but not while the group it led still
  // has members (background children), so only the group is signalled.
  if (::kill(-pid_, signo) != 0 && !reaped_) ::kill(pid_, signo);
}

}  // namespace sandboxd::guest
