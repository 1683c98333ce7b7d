#include "daemon/cli/net_serve_command.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>

#include "daemon/cli/run_command.hpp"
#include "daemon/net/sandbox_network.hpp"

namespace sandboxd::cli {
namespace asio = boost::asio;
using asio::local::stream_protocol;

int net_serve_command(const NetServeOptions& options) {
  auto setup = make_network_setup(options.network);
  if (!setup) {
    std::cerr << "sandboxd-host: " << setup.error() << "\n";
    return kSandboxFailure;
  }
  ::signal(SIGPIPE, SIG_IGN);
  asio::io_context io;
  ::unlink(options.socket_path.c_str());
  boost::system::error_code ec;
  stream_protocol::acceptor acceptor(io);
  acceptor.open(stream_protocol(), ec);
  if (!ec) acceptor.bind(stream_protocol::endpoint(options.socket_path), ec);
  if (!ec) acceptor.listen(1, ec);
  if (ec) {
    std::cerr << "sandboxd-host: cannot listen on " << options.socket_path << ": " << ec.message() << "\n";
    return kSandboxFailure;
  }
  std::cerr << "sandboxd-host: serving a sandbox network on " << options.socket_path << " (mtu "
            << setup->stack.mtu << ", " << setup->policy.rules().rules.size() << " egress rules)\n";

  std::shared_ptr<net::SandboxNetwork> network;
  auto print_stats = [&] {
    if (network) std::cerr << "--- network counters\n" << network->stats_text() << std::flush;
  };
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](const boost::system::error_code& error, stream_protocol::socket peer) {
      if (error) return;
      if (network) {
        if (options.network.print_stats) print_stats();
        network->stop();
      }
      network = net::SandboxNetwork::start(std::move(peer), setup->stack, setup->policy);
      accept_next();
    });
  };
  accept_next();

  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](const boost::system::error_code&, int) {
    if (options.network.print_stats) print_stats();
    if (network) network->stop();
    acceptor.close();
    io.stop();
  });
  asio::signal_set stats_signal(io, SIGUSR1);
  std::function<void()> wait_stats = [&] {
    stats_signal.async_wait([&](const boost::system::error_code& error, int) {
      if (error) return;
      print_stats();
      wait_stats();
    });
  };
  wait_stats();
  io.run();
  ::unlink(options.socket_path.c_str());
  return 0;
}

}  // namespace sandboxd::cli
