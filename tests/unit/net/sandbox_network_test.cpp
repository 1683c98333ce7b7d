// A running sandbox network's egress side: the hand-off of a pooled network
// to its sandbox (assign), what each new flow is told and reported, through
// the network's link; and host completions that arrive after the egress side
// is gone.
#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>

#include "daemon/net/egress/egress.hpp"
#include "daemon/net/sandbox_network.hpp"
#include "tests/unit/net/held_resolver.hpp"
#include "tests/unit/net/link_guest.hpp"

namespace sandboxd::net {
namespace {

namespace asio = boost::asio;
using test::HeldResolver;
using test::LinkGuest;
using test::run_until;
using test::SentFrame;
using wire::Ipv4Address;

const Ipv4Address kAliasBase{{10, 0, 2, 100}};
const Ipv4Address kPublic{{93, 184, 216, 34}};
const Ipv4Address kLoopback{{127, 0, 0, 1}};

EgressPolicy policy(EgressMode mode, std::vector<std::pair<std::string, Ipv4Address>> aliases = {}) {
  auto p = EgressPolicy::make(policy_for_mode(mode, aliases), aliases, kAliasBase, {});
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

// The stack's answer to a guest SYN from `src_port`.
std::function<bool(const SentFrame&)> answer_to(std::uint16_t src_port) {
  return [src_port](const SentFrame& f) { return f.tcp && f.tcp->dst_port == src_port; };
}

Bytes alias_query() {
  wire::DnsRepr q;
  q.id = 9;
  q.questions.push_back({"host.test", wire::DnsType::kA, wire::kDnsClassIn});
  Bytes out;
  REQUIRE(q.emit(out));
  return out;
}

// A pooled network: started under the waiting policy (deny-all, no aliases),
// with a host server on the loopback that a later assignment may open.
struct Pooled {
  Pooled() {
    auto [network_end, guest_end] = test::link_pair(io);
    guest.emplace(std::move(guest_end), config);
    network = SandboxNetwork::start(std::move(network_end), config, policy(EgressMode::kDenyAll),
                                    std::make_shared<HeldResolver>());
  }
  ~Pooled() {
    if (network) network->stop();
  }

  std::uint16_t server_port() const { return server.local_endpoint().port(); }

  asio::io_context io;
  asio::ip::tcp::acceptor server{io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  StackConfig config;
  std::optional<LinkGuest> guest;
  std::shared_ptr<SandboxNetwork> network;
};

}  // namespace

TEST_CASE("network: flows opened before the network is assigned are denied") {
  Pooled pool;
  LinkGuest& guest = *pool.guest;
  guest.send(guest.tcp(syn(41000, pool.server_port()), kAliasBase));
  guest.send(guest.tcp(syn(41001, 443), kPublic));
  guest.send(guest.udp(41002, kPublic, 53, alias_query()));

  std::optional<SentFrame> to_alias, to_public;
  REQUIRE(run_until(pool.io, [&] {
    if (!to_alias) to_alias = guest.take(answer_to(41000));
    if (!to_public) to_public = guest.take(answer_to(41001));
    return to_alias && to_public;
  }));
  CHECK(to_alias->tcp->flags.rst);  // no alias yet: the waiting policy has none
  CHECK(to_public->tcp->flags.rst);
  CHECK(pool.network->egress_counters().tcp_denied == 2);
  CHECK(pool.network->egress_counters().udp_flows_denied == 1);
  CHECK(pool.network->egress_counters().tcp_connected == 0);

  // An assignment opens new flows only; the ones denied are not reported.
  std::vector<FlowAudit> audit;
  pool.network->assign({"sb-1", "alice", policy(EgressMode::kDenyAll, {{"host.test", kLoopback}}),
                        [&](const FlowAudit& a) { audit.push_back(a); }});
  pool.io.restart();
  pool.io.run_for(std::chrono::milliseconds(50));
  CHECK(audit.empty());
}

TEST_CASE("network: a flow opened after assign follows the new policy and is audited with its verdict and reason") {
  Pooled pool;
  LinkGuest& guest = *pool.guest;
  std::vector<FlowAudit> audit;
  pool.network->assign({"sb-1", "alice", policy(EgressMode::kDenyAll, {{"host.test", kLoopback}}),
                        [&](const FlowAudit& a) { audit.push_back(a); }});

  bool accepted = false;
  asio::ip::tcp::socket upstream(pool.io);
  pool.server.async_accept(upstream, [&](const boost::system::error_code& ec) { accepted = !ec; });

  guest.send(guest.tcp(syn(42000, pool.server_port()), kAliasBase));  // the alias: allowed
  guest.send(guest.tcp(syn(42001, 443), kPublic));                    // anything else: denied
  guest.send(guest.udp(42002, pool.config.gateway_ip, wire::DnsRepr::kPort, alias_query()));
  guest.send(guest.udp(42003, pool.config.gateway_ip, 123, Bytes(48)));

  std::optional<SentFrame> to_alias, to_public;
  REQUIRE(run_until(pool.io, [&] {
    if (!to_alias) to_alias = guest.take(answer_to(42000));
    if (!to_public) to_public = guest.take(answer_to(42001));
    return accepted && to_alias && to_public;
  }));
  CHECK(to_alias->tcp->flags.syn);
  CHECK(to_alias->tcp->flags.ack);
  CHECK(to_public->tcp->flags.rst);

  REQUIRE(audit.size() == 4);
  const FlowAudit& allowed = audit[0];
  CHECK(allowed.sandbox_id == "sb-1");
  CHECK(allowed.owner == "alice");
  CHECK(allowed.protocol == FlowProtocol::kTcp);
  CHECK(allowed.key == FlowKey{pool.config.guest_ip, 42000, kAliasBase, pool.server_port()});
  CHECK(allowed.verdict == FlowVerdict::kAllowed);
  CHECK(allowed.reason == "\"host alias\" (rule 0) allows");
  CHECK(allowed.name == "host.test");  // judged by the alias's name
  CHECK(allowed.destination == FlowDestination::kUpstream);
  CHECK(allowed.connected_to == FlowEndpoint{kLoopback, pool.server_port()});
  CHECK(allowed.time.time_since_epoch().count() > 0);

  const FlowAudit& denied = audit[1];
  CHECK(denied.protocol == FlowProtocol::kTcp);
  CHECK(denied.key.remote_ip == kPublic);
  CHECK(denied.verdict == FlowVerdict::kDenied);
  CHECK(denied.reason == "no rule matches tcp to 93.184.216.34 port 443; denied by default");
  CHECK(denied.name.empty());  // an IP literal: no name
  CHECK(denied.destination == FlowDestination::kNone);
  CHECK(denied.to_text() == "tcp 10.0.2.15:42001 -> 93.184.216.34:443 denied (no rule matches tcp to 93.184.216.34 port 443; denied by default)");

  const FlowAudit& dns = audit[2];
  CHECK(dns.protocol == FlowProtocol::kUdp);
  CHECK(dns.verdict == FlowVerdict::kAllowed);
  CHECK(dns.destination == FlowDestination::kGatewayDns);
  CHECK(to_string(dns.destination) == "dns");

  const FlowAudit& gateway = audit[3];
  CHECK(gateway.protocol == FlowProtocol::kUdp);
  CHECK(gateway.verdict == FlowVerdict::kDenied);
  CHECK(gateway.reason == "the gateway only serves DNS");
}

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
