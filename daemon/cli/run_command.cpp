#include "daemon/cli/run_command.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include "daemon/cli/stdin_pump.hpp"
#include "daemon/service/blocking_work.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/host_tsc.hpp"
#include "daemon/vm/launcher.hpp"
#include "daemon/vm/network_mode.hpp"
#include "daemon/vm/qemu_machine_factory.hpp"
#include "protocol/write_fully.hpp"

namespace sandboxd::cli {
namespace asio = boost::asio;
using protocol::Exit;
using protocol::ExitKind;

namespace {


int exit_code_of(const Exit& exit) {
  switch (exit.kind) {
    case ExitKind::kExited: return exit.status;
    case ExitKind::kSignaled: return 128 + exit.status;
    case ExitKind::kStartFailed: return exit.status;
  }
  return kSandboxFailure;
}

std::vector<std::string> default_env() {
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=linux"};
}

}  // namespace

int run_command(const RunOptions& options) {
  auto started = std::chrono::steady_clock::now();
  if (auto image = vm::find_guest_image(options.image, vm::default_image_roots()); !image) {
    std::cerr << "sandboxd-host: " << image.error() << "\n";
    return kSandboxFailure;
  } else if (auto digests = vm::verify_layer_digests(image->layers); !digests) {
    std::cerr << "sandboxd-host: guest image '" << image->name << "': " << digests.error() << "\n";
    return kSandboxFailure;
  }
  auto accel = vm::parse_accelerator_request(options.accelerator);
  if (!accel) {
    std::cerr << "sandboxd-host: unknown accelerator '" << options.accelerator << "' (auto, kvm, tcg)\n";
    return kSandboxFailure;
  }
  auto network = vm::kNetworkModeNames.parse(options.network);
  if (!network) {
    std::cerr << "sandboxd-host: unknown network mode '" << options.network << "' ("
              << vm::kNetworkModeNames.choices() << ")\n";
    return kSandboxFailure;
  }
  if (options.net.mtu < vm::kMinMtu || options.net.mtu > vm::kMaxMtu) {
    std::cerr << "sandboxd-host: MTU " << options.net.mtu << " is out of range (" << vm::kMinMtu << ".."
              << vm::kMaxMtu << ")\n";
    return kSandboxFailure;
  }
  auto net_setup = make_network_setup(options.net);
  if (!net_setup) {
    std::cerr << "sandboxd-host: " << net_setup.error() << "\n";
    return kSandboxFailure;
  }
  auto guest_mac = net::wire::MacAddress::parse(vm::kDefaultGuestMac);
  if (guest_mac) net_setup->stack.guest_mac = *guest_mac;
  std::string qemu = vm::find_program("qemu-system-x86_64");
  if (qemu.empty()) {
    std::cerr << "sandboxd-host: qemu-system-x86_64 not found in PATH (apt-get install qemu-system-x86)\n";
    return kSandboxFailure;
  }
  ::signal(SIGPIPE, SIG_IGN);

  asio::io_context io;
  service::BlockingWork blocking(io.get_executor());
  vm::VmLauncher launcher(io, {*accel, vm::default_cache_dir()}, blocking);
  // One machine, made as the daemon makes them, with the run's own policy
  // from the start and no runtime record (a foreground process whose QEMU
  // dies with it).
  vm::QemuMachineSettings machine_settings;
  machine_settings.qemu_binary = qemu;
  machine_settings.image_roots = vm::default_image_roots();
  machine_settings.tsc_khz = vm::host_tsc_khz();
  machine_settings.network = *network;
  machine_settings.stack = net_setup->stack;
  machine_settings.waiting_policy = net_setup->policy;
  vm::QemuMachineFactory factory(io, launcher, machine_settings, nullptr);

  int result = kSandboxFailure;
  vm::MachinePtr machine;
  std::shared_ptr<agent::GuestAgent> guest;
  std::unique_ptr<StdinPump> stdin_pump;
  std::uint32_t exec_id = 0;
  bool stdout_gone = false;
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGQUIT);

  auto finish = [&](int code) {
    result = code;
    if (stdin_pump) stdin_pump->stop();
    signals.cancel();
    io.stop();
  };

  std::function<void()> forward_signals = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (guest && exec_id != 0) guest->signal(exec_id, signo);
      else finish(128 + signo);
      forward_signals();
    });
  };
  forward_signals();

  factory.create({options.image, options.cpus, options.memory_mib}, [&](Expected<vm::MachinePtr, std::string> booted) {
    if (!booted) {
      std::cerr << "sandboxd-host: the sandbox did not start: " << booted.error() << "\n";
      finish(kSandboxFailure);
      return;
    }
    machine = std::move(*booted);
    guest = machine->agent();
    if (options.print_timing) {
      std::cerr << "sandboxd-host: accelerator " << vm::to_string(launcher.accelerator().value_or(vm::Accelerator::kTcg))
                << ", network " << vm::to_string(*network) << ", agent ready after "
                << machine->boot_time().count() / 1000 << " ms\n";
    }
    machine->on_exit([&](const vm::MachineExit& exit) {
      std::cerr << "sandboxd-host: the VM stopped unexpectedly: " << exit.report << "\n";
      finish(kSandboxFailure);
    });

    agent::ExecRequest request;
    request.argv = options.command;
    request.env = default_env();
    request.env.insert(request.env.end(), options.env.begin(), options.env.end());
    request.cwd = options.cwd;
    request.user = options.user;
    request.stdin_open = true;

    exec_id = guest->start_exec(
        request,
        {
            .on_started = [](std::uint32_t) {},
            .on_output =
                [&](protocol::Stream stream, Bytes&& data) {
                  int fd = stream == protocol::Stream::kStdout ? 1 : 2;
                  if (!stdout_gone && !write_fully(fd, data) && fd == 1) {
                    // The reader of our stdout went away: the command gets the
                    // SIGPIPE it would get writing to that pipe itself.
                    stdout_gone = true;
                    guest->signal(exec_id, SIGPIPE);
                  }
                  guest->ack_output(exec_id, static_cast<std::uint32_t>(data.size()));
                },
            .on_stdin_credit = [&] { if (stdin_pump) stdin_pump->resume(); },
            .on_exit =
                [&](const Exit& exit) {
                  if (exit.kind == ExitKind::kStartFailed) std::cerr << "sandboxd-host: " << exit.message << "\n";
                  if (options.print_timing) {
                    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
                    std::cerr << "sandboxd-host: exit after " << ms.count() << " ms total\n";
                  }
                  finish(exit_code_of(exit));
                },
            .on_failed =
                [&](const std::string& reason) {
                  std::cerr << "sandboxd-host: the command failed in the sandbox: " << reason << "\n";
                  finish(kSandboxFailure);
                },
        });
    stdin_pump = std::make_unique<StdinPump>(
        io, 0, [&] { return guest->stdin_credit(exec_id); },
        [&](ByteSpan data, bool eof) { return guest->write_stdin(exec_id, data, eof); });
  });

  io.run();
  stdin_pump.reset();
  if (machine && options.net.print_stats) {
    rusage self{};
    ::getrusage(RUSAGE_SELF, &self);
    double cpu = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                 static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
    std::cerr << "--- network counters\n" << machine->network_stats() << "daemon cpu seconds: " << cpu << "\n";
  }
  // Nothing in the guest outlives the command: the machine is stopped, and
  // the loop runs until QEMU has been reaped.
  if (machine) {
    bool gone = false;
    machine->stop([&] { gone = true; });
    io.restart();
    while (!gone && io.run_one_for(std::chrono::seconds(10)) > 0) {
    }
    machine.reset();
  }
  return result;
}

}  // namespace sandboxd::cli
