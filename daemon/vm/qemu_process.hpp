// One QEMU process: started, watched, and never left behind.
//
// The child asks the kernel to SIGKILL it when the daemon dies
// (PR_SET_PDEATHSIG), so not even a SIGKILL of sandboxd-host orphans a VM. It
// runs in its own process group, so a terminal's Ctrl-C reaches the daemon
// (which forwards it to the guest process) rather than QEMU. Its exit is
// watched through a pidfd on the io_context; its stderr is kept as a short
// tail for error reports.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/vm/output_tail.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::vm {

class QemuProcess : public std::enable_shared_from_this<QemuProcess> {
 public:
  // Starts argv[0] with `inherited_fds` kept open at their numbers and all other
  // descriptors closed. On failure returns a message a user can act on.
  static Expected<std::shared_ptr<QemuProcess>, std::string> spawn(boost::asio::io_context& io,
                                                                   const std::vector<std::string>& argv,
                                                                   const std::vector<int>& inherited_fds);
  ~QemuProcess();
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool exited() const { return exited_; }
  // The wait status once exited() (as from waitpid).
  int wait_status() const { return wait_status_; }
  // "exit status 1" / "killed by signal 9"
  std::string describe_exit() const;
  std::string stderr_tail() const { return stderr_tail_.text(); }

  // Calls `done` once, when the process has exited and been reaped.
  void on_exit(std::function<void()> done);
  void kill();

 private:
  QemuProcess(boost::asio::io_context& io, pid_t pid, int pidfd, int stderr_fd);
  void start_watching();
  void read_stderr();
  void reap();

  pid_t pid_;
  boost::asio::posix::stream_descriptor pidfd_;
  boost::asio::posix::stream_descriptor stderr_;
  OutputTail stderr_tail_{4096};
  std::array<char, 1024> stderr_buf_{};
  bool exited_ = false;
  int wait_status_ = 0;
  std::vector<std::function<void()>> exit_waiters_;
};

}  // namespace sandboxd::vm
