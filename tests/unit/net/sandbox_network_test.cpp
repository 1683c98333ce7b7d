// The egress side's lifetime against host completions: a connect, a
// readiness wait or a datagram can complete after the egress side is gone,
// and must find nothing to touch.
#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>

#include "daemon/net/egress/egress.hpp"
#include "tests/unit/net/held_resolver.hpp"
#include "tests/unit/net/stack_test_guest.hpp"

namespace sandboxd::net {
namespace {

namespace asio = boost::asio;
using test::HeldResolver;
using wire::Ipv4Address;

const Ipv4Address kAliasBase{{10, 0, 2, 100}};
const Ipv4Address kLoopback{{127, 0, 0, 1}};

EgressPolicy policy(EgressMode mode, std::vector<std::pair<std::string, Ipv4Address>> aliases = {}) {
  auto p = EgressPolicy::make(mode, aliases, kAliasBase, {});
  REQUIRE(p);
  return *p;
}

wire::TcpRepr syn(std::uint16_t src_port, std::uint16_t dst_port) {
  wire::TcpRepr s;
  s.src_port = src_port;
  s.dst_port = dst_port;
  s.seq_number = 5000;
  s.flags.syn = true;
  s.window = 65535;
  s.options.mss = 1460;
  return s;
}

}  // namespace

TEST_CASE("egress: a TCP connect that completes after the egress side is gone touches nothing") {
  asio::io_context io;
  asio::ip::tcp::acceptor server(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const std::uint16_t port = server.local_endpoint().port();
  StackConfig config;
  auto stack = std::make_unique<NetStack>(config);
  auto aliases = policy(EgressMode::kDenyAll, {{"host.test", kLoopback}});
  auto egress = std::make_unique<Egress>(io.get_executor(), *stack, aliases, [] {}, std::make_shared<HeldResolver>());
  test::FakeGuest guest(*stack);
  guest.send_tcp(syn(43000, port), kAliasBase);
  for (StackEvent& event : stack->take_events()) egress->handle(event);
  CHECK(egress->counters().tcp_connected == 0);  // the connect is under way

  // Gone before the connect's completion has run, in the order a network's
  // destructor takes them apart: egress, then stack.
  egress.reset();
  stack.reset();
  io.run_for(std::chrono::milliseconds(200));
}

}  // namespace sandboxd::net
