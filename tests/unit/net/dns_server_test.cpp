// The gateway's DNS server in a running network: guest queries over the
// link, names resolved by a resolver the test holds, and what happens when
// that resolver answers late — after the network that asked is gone.
#include <catch2/catch.hpp>

#include "daemon/net/egress/dns_server.hpp"
#include "daemon/net/sandbox_network.hpp"
#include "tests/unit/net/held_resolver.hpp"
#include "tests/unit/net/link_guest.hpp"

namespace sandboxd::net {
namespace {

using test::HeldResolver;
using test::LinkGuest;
using test::run_until;
using test::SentFrame;
using wire::Ipv4Address;

const Ipv4Address kAliasBase{{10, 0, 2, 100}};
const Ipv4Address kFound{{93, 184, 216, 34}};
constexpr std::uint16_t kGuestPort = 40053;

EgressPolicy policy(EgressMode mode, std::vector<std::pair<std::string, Ipv4Address>> aliases = {}) {
  auto p = EgressPolicy::make(policy_for_mode(mode, aliases), aliases, kAliasBase, {});
  REQUIRE(p);
  return *p;
}

Bytes query(std::string name, std::uint16_t id) {
  wire::DnsRepr q;
  q.id = id;
  q.recursion_desired = true;
  q.questions.push_back({std::move(name), wire::DnsType::kA, wire::kDnsClassIn});
  Bytes out;
  REQUIRE(q.emit(out));
  return out;
}

// A network on a link, its guest, and the resolver its DNS server asks.
struct Running {
  explicit Running(EgressPolicy p) {
    auto [network_end, guest_end] = test::link_pair(io);
    guest.emplace(std::move(guest_end), config);
    network = SandboxNetwork::start(std::move(network_end), config, std::move(p), resolver);
  }

  boost::asio::io_context io;
  StackConfig config;
  std::shared_ptr<HeldResolver> resolver = std::make_shared<HeldResolver>();
  std::optional<LinkGuest> guest;
  std::shared_ptr<SandboxNetwork> network;
};

bool is_dns_reply(const SentFrame& f) { return f.udp && f.udp->src_port == wire::DnsRepr::kPort; }

}  // namespace

TEST_CASE("dns: a host resolver that answers after the sandbox network is gone touches nothing") {
  Running net(policy(EgressMode::kAllowAll));
  net.guest->send(net.guest->udp(kGuestPort, net.config.gateway_ip, wire::DnsRepr::kPort, query("example.com", 7)));
  REQUIRE(run_until(net.io, [&] { return net.resolver->pending.size() == 1; }));
  CHECK(net.resolver->pending[0].name == "example.com");

  // What releasing a machine does: stop the network and drop it, while the
  // host's resolver is still working on the guest's name.
  std::weak_ptr<SandboxNetwork> weak = net.network;
  net.network->stop();
  net.network.reset();
  REQUIRE(run_until(net.io, [&] { return weak.expired(); }));
  CHECK(net.resolver->cancels == 1);

  net.resolver->answer_all(HostLookup{HostLookup::Outcome::kFound, {kFound}});
  net.io.restart();
  net.io.poll();
  CHECK_FALSE(net.guest->take(is_dns_reply));
}

TEST_CASE("dns: a name the host resolves reaches the guest over UDP, as an A record") {
  Running net(policy(EgressMode::kAllowAll));
  net.guest->send(net.guest->udp(kGuestPort, net.config.gateway_ip, wire::DnsRepr::kPort, query("example.com", 7)));
  REQUIRE(run_until(net.io, [&] { return net.resolver->pending.size() == 1; }));
  net.resolver->answer_all(HostLookup{HostLookup::Outcome::kFound, {kFound}});

  std::optional<SentFrame> reply;
  REQUIRE(run_until(net.io, [&] { return (reply = net.guest->take(is_dns_reply)).has_value(); }));
  CHECK(reply->ip->src == net.config.gateway_ip);
  CHECK(reply->udp->dst_port == kGuestPort);
  auto dns = wire::DnsRepr::parse(reply->payload);
  REQUIRE(dns);
  CHECK(dns->id == 7);
  CHECK(dns->rcode == wire::DnsRcode::kNoError);
  REQUIRE(dns->answers.size() == 1);
  CHECK(std::get<Ipv4Address>(dns->answers[0].data) == kFound);
  CHECK(net.network->egress_counters().dns_resolved_on_host == 1);
}

TEST_CASE("dns: a name the host cannot resolve is answered NXDOMAIN, a failed lookup SERVFAIL") {
  Running net(policy(EgressMode::kAllowAll));
  net.guest->send(net.guest->udp(kGuestPort, net.config.gateway_ip, wire::DnsRepr::kPort, query("nope.example", 1)));
  net.guest->send(net.guest->udp(kGuestPort, net.config.gateway_ip, wire::DnsRepr::kPort, query("slow.example", 2)));
  REQUIRE(run_until(net.io, [&] { return net.resolver->pending.size() == 2; }));
  auto held = std::move(net.resolver->pending);
  held[0].done(HostLookup{HostLookup::Outcome::kNoSuchName, {}});
  held[1].done(HostLookup{HostLookup::Outcome::kFailed, {}});

  std::vector<wire::DnsRepr> replies;
  REQUIRE(run_until(net.io, [&] {
    while (auto f = net.guest->take(is_dns_reply)) replies.push_back(*wire::DnsRepr::parse(f->payload));
    return replies.size() == 2;
  }));
  CHECK(replies[0].id == 1);
  CHECK(replies[0].rcode == wire::DnsRcode::kNameError);
  CHECK(replies[1].id == 2);
  CHECK(replies[1].rcode == wire::DnsRcode::kServerFailure);
  CHECK(net.network->egress_counters().dns_resolve_failures == 1);
}

TEST_CASE("dns: an allowed name whose addresses are all private or metadata is refused, a mixed answer filtered") {
  Running net(policy(EgressMode::kAllowAll));
  net.guest->send(net.guest->udp(kGuestPort, net.config.gateway_ip, wire::DnsRepr::kPort, query("rebind.example", 1)));
  net.guest->send(net.guest->udp(kGuestPort, net.config.gateway_ip, wire::DnsRepr::kPort, query("mixed.example", 2)));
  REQUIRE(run_until(net.io, [&] { return net.resolver->pending.size() == 2; }));
  auto held = std::move(net.resolver->pending);
  held[0].done(HostLookup{HostLookup::Outcome::kFound,
                          {Ipv4Address{{127, 0, 0, 1}}, Ipv4Address{{10, 0, 0, 1}}, Ipv4Address{{169, 254, 169, 254}}}});
  held[1].done(HostLookup{HostLookup::Outcome::kFound, {Ipv4Address{{192, 168, 0, 1}}, kFound}});

  std::vector<wire::DnsRepr> replies;
  REQUIRE(run_until(net.io, [&] {
    while (auto f = net.guest->take(is_dns_reply)) replies.push_back(*wire::DnsRepr::parse(f->payload));
    return replies.size() == 2;
  }));
  CHECK(replies[0].id == 1);
  CHECK(replies[0].rcode == wire::DnsRcode::kRefused);
  CHECK(replies[0].answers.empty());
  CHECK(replies[1].id == 2);
  CHECK(replies[1].rcode == wire::DnsRcode::kNoError);
  REQUIRE(replies[1].answers.size() == 1);
  CHECK(std::get<Ipv4Address>(replies[1].answers[0].data) == kFound);
  CHECK(net.network->egress_counters().dns_answers_refused == 1);
}

TEST_CASE("dns: a guest that floods its resolver is answered at a bounded rate") {
  Running net(policy(EgressMode::kDenyAll));
  for (std::uint16_t batch = 0; batch < 10; ++batch) {
    for (std::uint16_t i = 0; i < 100; ++i)
      net.guest->send(net.guest->udp(kGuestPort, net.config.gateway_ip, wire::DnsRepr::kPort,
                                     query("x.example", static_cast<std::uint16_t>(batch * 100 + i))));
    REQUIRE(run_until(net.io, [&] { return net.network->egress_counters().dns_queries == (batch + 1u) * 100u; }));
  }
  CHECK(net.network->egress_counters().dns_rate_limited >= 1000 - DnsServer::kQueryBurst - 50);
  CHECK(net.resolver->pending.empty());  // denied names are never looked up
}

TEST_CASE("dns: queries over TCP to the gateway are answered on the same connection, each framed") {
  Running net(policy(EgressMode::kAllowAll, {{"files.internal", Ipv4Address{{127, 0, 0, 1}}}}));
  LinkGuest& guest = *net.guest;
  const Ipv4Address gateway = net.config.gateway_ip;
  auto from_dns = [&](const SentFrame& f) { return f.tcp && f.tcp->src_port == wire::DnsRepr::kPort; };

  wire::TcpRepr syn;
  syn.src_port = kGuestPort;
  syn.dst_port = wire::DnsRepr::kPort;
  syn.seq_number = 1000;
  syn.flags.syn = true;
  syn.window = 65535;
  syn.options.mss = 1460;
  guest.send(guest.tcp(syn, gateway));
  std::optional<SentFrame> synack;
  REQUIRE(run_until(net.io, [&] { return (synack = guest.take(from_dns)).has_value(); }));
  REQUIRE(synack->tcp->flags.syn);
  REQUIRE(synack->tcp->flags.ack);

  // Two queries in one segment: an alias (answered at once) and a name the
  // host resolves (answered when the test says so).
  Bytes stream;
  for (const Bytes& q : {query("files.internal", 1), query("example.com", 2)}) {
    stream.push_back(static_cast<std::byte>(q.size() >> 8));
    stream.push_back(static_cast<std::byte>(q.size() & 0xff));
    stream.insert(stream.end(), q.begin(), q.end());
  }
  wire::TcpRepr data;
  data.src_port = kGuestPort;
  data.dst_port = wire::DnsRepr::kPort;
  data.seq_number = 1001;
  data.ack_number = synack->tcp->seq_number + 1;
  data.flags.ack = true;
  data.flags.psh = true;
  data.window = 65535;
  data.payload = stream;
  guest.send(guest.tcp(data, gateway));
  REQUIRE(run_until(net.io, [&] { return net.resolver->pending.size() == 1; }));
  net.resolver->answer_all(HostLookup{HostLookup::Outcome::kFound, {kFound}});

  Bytes received;
  std::vector<wire::DnsRepr> replies;
  REQUIRE(run_until(net.io, [&] {
    while (auto f = guest.take(from_dns)) received.insert(received.end(), f->payload.begin(), f->payload.end());
    while (received.size() >= 2) {
      std::size_t n =
          (std::size_t{std::to_integer<std::uint8_t>(received[0])} << 8) | std::to_integer<std::uint8_t>(received[1]);
      if (received.size() < 2 + n) break;
      auto r = wire::DnsRepr::parse(ByteSpan(received).subspan(2, n));
      REQUIRE(r);
      replies.push_back(*r);
      received.erase(received.begin(), received.begin() + static_cast<std::ptrdiff_t>(2 + n));
    }
    return replies.size() == 2;
  }));
  CHECK(replies[0].id == 1);
  REQUIRE(replies[0].answers.size() == 1);
  CHECK(std::get<Ipv4Address>(replies[0].answers[0].data) == kAliasBase);
  CHECK(replies[1].id == 2);
  REQUIRE(replies[1].answers.size() == 1);
  CHECK(std::get<Ipv4Address>(replies[1].answers[0].data) == kFound);
  CHECK(net.network->egress_counters().dns_queries == 2);
}

}  // namespace sandboxd::net
