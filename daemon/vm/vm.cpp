#include "daemon/vm/vm.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/vm/qemu_command.hpp"

namespace sandboxd::vm {
namespace asio = boost::asio;

namespace {

struct SocketPair {
  int host = -1;
  int guest = -1;
};

Expected<SocketPair, std::string> make_socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return Unexpected{std::string("socketpair: ") + std::strerror(errno)};
  return SocketPair{fds[0], fds[1]};
}

}  // namespace

Vm::Vm(asio::io_context& io, VmSpec spec) : spec_(std::move(spec)), timer_(io) {}

Vm::~Vm() {
  if (process_) process_->kill();
}

void Vm::boot(asio::io_context& io, const VmSpec& spec, BootCallback done) {
  std::shared_ptr<Vm> vm(new Vm(io, spec));
  vm->boot_done_ = std::move(done);

  std::vector<SocketPair> pairs;
  auto cleanup = [&] {
    for (auto& p : pairs) {
      if (p.host >= 0) ::close(p.host);
      if (p.guest >= 0) ::close(p.guest);
    }
  };
  // 0: control port, 1: console, 2..: extra ports, last: the network link in stack mode.
  const bool stack_link = spec.network == NetworkMode::kStack;
  const std::size_t link_index = 2 + spec.extra_ports.size();
  for (std::size_t i = 0; i < link_index + (stack_link ? 1 : 0); ++i) {
    auto pair = make_socket_pair();
    if (!pair) {
      cleanup();
      vm->finish_boot(Unexpected{BootError{BootFailure::kSpawnFailed, pair.error()}});
      return;
    }
    pairs.push_back(*pair);
  }

  QemuConfig config;
  config.qemu_binary = spec.qemu_binary;
  config.kernel = spec.image.kernel;
  config.initramfs = spec.image.initramfs;
  config.layers = spec.image.layers;
  config.accelerator = spec.accelerator;
  config.cpus = spec.cpus;
  config.memory_mib = spec.memory_mib;
  config.control_fd = pairs[0].guest;
  config.console_fd = pairs[1].guest;
  config.tsc_khz = spec.tsc_khz;
  config.seccomp_sandbox = spec.seccomp_sandbox;
  std::vector<int> inherited = {pairs[0].guest, pairs[1].guest};
  for (std::size_t i = 0; i < spec.extra_ports.size(); ++i) {
    config.extra_ports.push_back(spec.extra_ports[i] + "=" + std::to_string(pairs[2 + i].guest));
    inherited.push_back(pairs[2 + i].guest);
  }
  config.network = spec.network;
  config.guest_mac = spec.guest_mac;
  config.mtu = spec.mtu;
  config.extra_qemu_args = spec.extra_qemu_args;
  config.extra_kernel_args = spec.extra_kernel_args;
  if (spec.writable_disk) {
    config.writable_disk_fd = spec.writable_disk->fd();
    inherited.push_back(spec.writable_disk->fd());
  }
  if (stack_link) {
    config.network_fd = pairs[link_index].guest;
    inherited.push_back(pairs[link_index].guest);
  }

  vm->spawned_at_ = std::chrono::steady_clock::now();
  auto process = QemuProcess::spawn(io, qemu_command_line(config), inherited);
  for (auto& p : pairs) {
    ::close(p.guest);
    p.guest = -1;
  }
  if (!process) {
    cleanup();
    vm->finish_boot(Unexpected{BootError{BootFailure::kSpawnFailed, process.error()}});
    return;
  }
  vm->process_ = *process;

  vm->console_.emplace(io, asio::local::stream_protocol(), pairs[1].host);
  for (std::size_t i = 0; i < spec.extra_ports.size(); ++i)
    vm->extra_ports_.emplace_back(io, asio::local::stream_protocol(), pairs[2 + i].host);
  if (stack_link) vm->network_link_.emplace(io, asio::local::stream_protocol(), pairs[link_index].host);
  auto channel = std::make_shared<agent::AgentChannel>(Socket(io, asio::local::stream_protocol(), pairs[0].host));
  vm->agent_ = std::make_shared<agent::GuestAgent>(channel);
  vm->read_console();
  if (spec.on_spawned) spec.on_spawned(*vm);

  std::weak_ptr<Vm> weak = vm;
  vm->agent_->start({
      .on_hello =
          [weak](const protocol::Hello&) {
            auto self = weak.lock();
            if (!self || !self->boot_done_) return;
            self->boot_time_ = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - self->spawned_at_);
            self->timer_.cancel();
            self->finish_boot(self);
          },
      .on_closed =
          [weak](const std::string& why) {
            auto self = weak.lock();
            if (!self || self->boot_done_) return;  // before the hello, QEMU's exit or the deadline reports
            auto handlers = std::move(self->agent_lost_handlers_);
            for (auto& h : handlers) h(why);
          },
      .on_protocol_problem = [](const std::string&) {},
  });

  vm->process_->on_exit([weak] {
    auto self = weak.lock();
    if (!self) return;
    self->timer_.cancel();
    std::string report = self->exit_report();
    if (self->boot_done_) {
      self->finish_boot(Unexpected{BootError{BootFailure::kQemuExited, "QEMU exited before the guest agent answered: " + report}});
      return;
    }
    auto handlers = std::move(self->exit_handlers_);
    for (auto& h : handlers) h(report);
  });

  vm->timer_.expires_after(spec.boot_deadline);
  // The deadline's handler holds the VM alive until boot has an outcome: it
  // always runs, either at the deadline or cancelled by the hello or an exit.
  vm->timer_.async_wait([self = vm](const boost::system::error_code& ec) {
    if (ec || !self->boot_done_) return;
    std::string tail = self->console_tail();
    self->process_->kill();
    self->finish_boot(Unexpected{BootError{
        BootFailure::kDeadline, "the guest agent did not answer within " +
                                    std::to_string(self->spec_.boot_deadline.count()) + " ms (accelerator " +
                                    std::string(to_string(self->spec_.accelerator)) + "); console:\n" + tail}});
  });
}

void Vm::finish_boot(Expected<std::shared_ptr<Vm>, BootError> result) {
  auto done = std::move(boot_done_);
  boot_done_ = nullptr;
  if (!result && process_) process_->kill();
  if (done) done(std::move(result));
}

void Vm::read_console() {
  auto weak = weak_from_this();
  console_->async_read_some(asio::buffer(console_buf_), [weak](const boost::system::error_code& ec, std::size_t n) {
    auto self = weak.lock();
    if (!self || ec) return;
    self->console_tail_.append(std::string_view(self->console_buf_.data(), n));
    self->read_console();
  });
}

std::string Vm::exit_report() const {
  std::string report = "QEMU " + process_->describe_exit();
  std::string err = process_->stderr_tail();
  if (!err.empty()) report += "; QEMU said: " + err;
  std::string console = console_tail();
  if (!console.empty()) report += "; console tail:\n" + console;
  return report;
}

void Vm::shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  if (process_->exited()) {
    done();
    return;
  }
  agent_->shutdown();
  timer_.expires_after(grace);
  auto weak = weak_from_this();
  timer_.async_wait([weak](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->process_->kill();
  });
  auto self = shared_from_this();
  process_->on_exit([self, done = std::move(done)] {
    self->timer_.cancel();
    done();
  });
}

void Vm::kill() { process_->kill(); }

void Vm::on_agent_lost(std::function<void(const std::string&)> handler) {
  agent_lost_handlers_.push_back(std::move(handler));
}

void Vm::on_exit(std::function<void(const std::string&)> handler) {
  if (process_->exited()) {
    handler(exit_report());
    return;
  }
  exit_handlers_.push_back(std::move(handler));
}

}  // namespace sandboxd::vm
