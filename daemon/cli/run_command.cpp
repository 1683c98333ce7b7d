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
#include "daemon/net/sandbox_network.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/host_tsc.hpp"
#include "daemon/vm/launcher.hpp"
#include "daemon/vm/network_mode.hpp"
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
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux"};
}

}  // namespace

int run_command(const RunOptions& options) {
  auto started = std::chrono::steady_clock::now();
  auto image = vm::find_guest_image(options.image, vm::default_image_roots());
  if (!image) {
    std::cerr << "sandboxd-host: " << image.error() << "\n";
    return kSandboxFailure;
  }
  auto accel = vm::parse_accelerator_request(options.accelerator);
  if (!accel) {
    std::cerr << "sandboxd-host: unknown accelerator '" << options.accelerator << "' (auto, kvm, tcg)\n";
    return kSandboxFailure;
  }
  auto network = vm::network_mode_from_string(options.network);
  if (!network) {
    std::cerr << "sandboxd-host: unknown network mode '" << options.network << "' (stack, slirp, none)\n";
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
  vm::VmLauncher launcher(io, {*accel, vm::default_cache_dir()});
  vm::VmSpec spec;
  spec.image = *image;
  spec.qemu_binary = qemu;
  spec.cpus = options.cpus;
  spec.memory_mib = options.memory_mib;
  spec.tsc_khz = vm::host_tsc_khz();
  spec.network = *network;
  spec.mtu = options.net.mtu;
  // The guest asks DHCP before it says hello, so the stack is attached as
  // soon as QEMU runs: once per boot attempt, each with a fresh link.
  std::shared_ptr<net::SandboxNetwork> guest_network;
  spec.on_spawned = [&](vm::Vm& vm) {
    if (vm.spec().network != vm::NetworkMode::kStack) return;
    if (guest_network) guest_network->stop();
    guest_network = net::SandboxNetwork::start(std::move(vm.network_link()), net_setup->stack, net_setup->policy);
  };

  int result = kSandboxFailure;
  std::shared_ptr<vm::Vm> machine;
  std::unique_ptr<StdinPump> stdin_pump;
  std::uint32_t exec_id = 0;
  bool stdout_gone = false;
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGQUIT);

  auto finish = [&](int code) {
    result = code;
    if (stdin_pump) stdin_pump->stop();
    signals.cancel();
    if (machine) machine->kill();  // nothing in the guest outlives the command
    io.stop();
  };

  std::function<void()> forward_signals = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (machine && exec_id != 0) machine->agent().signal(exec_id, signo);
      else finish(128 + signo);
      forward_signals();
    });
  };
  forward_signals();

  launcher.launch(spec, [&](Expected<std::shared_ptr<vm::Vm>, vm::BootError> booted) {
    if (!booted) {
      std::cerr << "sandboxd-host: the sandbox did not start: " << booted.error().message << "\n";
      finish(kSandboxFailure);
      return;
    }
    machine = *booted;
    if (options.print_timing) {
      std::cerr << "sandboxd-host: accelerator " << vm::to_string(machine->spec().accelerator) << ", network "
                << vm::to_string(machine->spec().network) << ", agent ready after "
                << machine->boot_time().count() / 1000 << " ms\n";
    }
    machine->on_exit([&](const std::string& why) {
      std::cerr << "sandboxd-host: the VM stopped unexpectedly: " << why << "\n";
      finish(kSandboxFailure);
    });

    agent::ExecRequest request;
    request.argv = options.command;
    request.env = default_env();
    request.env.insert(request.env.end(), options.env.begin(), options.env.end());
    request.cwd = options.cwd;
    request.stdin_open = true;

    auto& agent = machine->agent();
    exec_id = agent.start_exec(
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
                    machine->agent().signal(exec_id, SIGPIPE);
                  }
                  machine->agent().ack_output(exec_id, static_cast<std::uint32_t>(data.size()));
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
        io, 0, [&] { return machine->agent().stdin_credit(exec_id); },
        [&](ByteSpan data, bool eof) { return machine->agent().write_stdin(exec_id, data, eof); });
  });

  io.run();
  stdin_pump.reset();
  if (machine) machine->kill();
  if (guest_network) {
    if (options.net.print_stats) {
      rusage self{};
      ::getrusage(RUSAGE_SELF, &self);
      double cpu = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                   static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
      std::cerr << "--- network counters\n" << guest_network->stats_text() << "daemon cpu seconds: " << cpu << "\n";
    }
    guest_network->stop();
  }
  return result;
}

}  // namespace sandboxd::cli
