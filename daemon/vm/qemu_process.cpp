#include "daemon/vm/qemu_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sandboxd::vm {
namespace asio = boost::asio;

namespace {
int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
}  // namespace

Expected<std::shared_ptr<QemuProcess>, std::string> QemuProcess::spawn(asio::io_context& io,
                                                                       const std::vector<std::string>& argv,
                                                                       const std::vector<int>& inherited_fds) {
  // Everything the child needs is prepared before fork: between fork and exec
  // only async-signal-safe calls are allowed.
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Unexpected{std::string("pipe: ") + std::strerror(errno)};
  // Reports an exec failure from the child; closed by a successful exec.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    return Unexpected{std::string("pipe: ") + std::strerror(errno)};
  }

  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {err_pipe[0], err_pipe[1], exec_pipe[0], exec_pipe[1]}) ::close(fd);
    return Unexpected{std::string("fork: ") + std::strerror(e)};
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the daemon died before prctl
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(err_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    // Every descriptor the daemon holds is close-on-exec except the ones QEMU
    // is meant to have.
    ::syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
    for (int fd : inherited_fds) ::fcntl(fd, F_SETFD, 0);
    ::fcntl(exec_pipe[1], F_SETFD, FD_CLOEXEC);
    ::execv(cargv[0], cargv.data());
    ::execvp(cargv[0], cargv.data());
    int e = errno;
    (void)!::write(exec_pipe[1], &e, sizeof e);
    ::_exit(127);
  }

  ::close(err_pipe[1]);
  ::close(exec_pipe[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    ::waitpid(pid, nullptr, 0);
    ::close(err_pipe[0]);
    return Unexpected{"cannot run " + argv[0] + ": " + std::strerror(exec_errno)};
  }

  int pidfd = pidfd_open(pid);
  if (pidfd < 0) {
    int e = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(err_pipe[0]);
    return Unexpected{std::string("pidfd_open: ") + std::strerror(e)};
  }
  ::fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  std::shared_ptr<QemuProcess> p(new QemuProcess(io, pid, pidfd, err_pipe[0]));
  p->start_watching();
  return p;
}

QemuProcess::QemuProcess(asio::io_context& io, pid_t pid, int pidfd, int stderr_fd)
    : pid_(pid), pidfd_(io, pidfd), stderr_(io, stderr_fd) {}

QemuProcess::~QemuProcess() {
  if (!exited_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void QemuProcess::start_watching() {
  auto self = weak_from_this();
  pidfd_.async_wait(asio::posix::stream_descriptor::wait_read, [self](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto p = self.lock()) p->reap();
  });
  read_stderr();
}

void QemuProcess::read_stderr() {
  auto self = weak_from_this();
  stderr_.async_read_some(asio::buffer(stderr_buf_), [self](const boost::system::error_code& ec, std::size_t n) {
    auto p = self.lock();
    if (!p || ec) return;
    p->stderr_tail_.append(std::string_view(p->stderr_buf_.data(), n));
    p->read_stderr();
  });
}

void QemuProcess::reap() {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  exited_ = true;
  wait_status_ = status;
  // Take what QEMU wrote last before reporting (it is usually why it exited).
  char buf[4096];
  int fd = stderr_.native_handle();
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) stderr_tail_.append(std::string_view(buf, static_cast<std::size_t>(n)));
  auto waiters = std::move(exit_waiters_);
  for (auto& w : waiters) w();
}

void QemuProcess::on_exit(std::function<void()> done) {
  if (exited_) {
    done();
    return;
  }
  exit_waiters_.push_back(std::move(done));
}

void QemuProcess::kill() {
  if (!exited_) ::kill(pid_, SIGKILL);
}

std::string QemuProcess::describe_exit() const {
  if (!exited_) return "still running";
  if (WIFEXITED(wait_status_)) return "exit status " + std::to_string(WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) return std::string("killed by signal ") + std::to_string(WTERMSIG(wait_status_));
  return "unknown status";
}

}  // namespace sandboxd::vm
