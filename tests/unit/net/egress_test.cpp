// The egress decision point, the plan it makes for each new flow, and the
// gateway's DNS answers: pure rules.
#include <catch2/catch.hpp>

#include "daemon/net/egress/dns_answer.hpp"
#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/egress/flow_plan.hpp"

namespace sandboxd::net {
namespace {

using wire::Ipv4Address;

const Ipv4Address kAliasBase{{10, 0, 2, 100}};
const Ipv4Address kGuest{{10, 0, 2, 15}};

EgressPolicy policy(EgressMode mode, std::vector<std::pair<std::string, Ipv4Address>> aliases = {},
                    std::vector<Ipv4Address> host = {}) {
  auto p = EgressPolicy::make(mode, aliases, kAliasBase, std::move(host));
  REQUIRE(p);
  return *p;
}

FlowKey to(Ipv4Address ip, std::uint16_t port = 80) { return FlowKey{kGuest, 40000, ip, port}; }

Bytes query(std::string name, wire::DnsType type, std::uint16_t id = 0x4242) {
  wire::DnsRepr q;
  q.id = id;
  q.recursion_desired = true;
  q.questions.push_back({std::move(name), type, wire::kDnsClassIn});
  Bytes out;
  REQUIRE(q.emit(out));
  return out;
}

wire::DnsRepr reply_of(const DnsPlan& plan) {
  REQUIRE(plan.kind == DnsPlan::Kind::kReply);
  auto r = wire::DnsRepr::parse(plan.reply);
  REQUIRE(r);
  CHECK(r->response);
  return *r;
}

}  // namespace

TEST_CASE("egress: allow-all opens public and private destinations but never the host itself") {
  Ipv4Address host_eth{{172, 17, 0, 5}};
  auto p = policy(EgressMode::kAllowAll, {}, {host_eth, Ipv4Address{{127, 0, 0, 1}}});
  auto d = p.decide(to(Ipv4Address{{93, 184, 216, 34}}));
  CHECK(d.allowed);
  CHECK(d.connect_to == Ipv4Address{{93, 184, 216, 34}});
  CHECK(p.decide(to(Ipv4Address{{192, 168, 1, 1}})).allowed);
  CHECK_FALSE(p.decide(to(Ipv4Address{{127, 0, 0, 1}})).allowed);
  CHECK_FALSE(p.decide(to(Ipv4Address{{127, 1, 2, 3}})).allowed);
  CHECK_FALSE(p.decide(to(host_eth)).allowed);
  CHECK_FALSE(p.decide(to(Ipv4Address{})).allowed);
  CHECK_FALSE(p.decide(to(Ipv4Address{{224, 0, 0, 1}})).allowed);
  CHECK(p.decide(to(host_eth)).reason == "the host's own addresses are not reachable");
}

TEST_CASE("egress: deny-all denies everything but host aliases, which reach the host's loopback") {
  auto p = policy(EgressMode::kDenyAll, {{"Files.Internal", Ipv4Address{{127, 0, 0, 1}}}, {"db", Ipv4Address{{10, 9, 8, 7}}}});
  CHECK_FALSE(p.decide(to(Ipv4Address{{93, 184, 216, 34}})).allowed);
  CHECK(p.decide(to(Ipv4Address{{93, 184, 216, 34}})).reason == "egress denied by policy");
  REQUIRE(p.resolve_alias("files.internal.") == kAliasBase);
  REQUIRE(p.resolve_alias("DB") == Ipv4Address{{10, 0, 2, 101}});
  CHECK_FALSE(p.resolve_alias("other"));
  auto d = p.decide(to(kAliasBase, 8080));
  CHECK(d.allowed);
  CHECK(d.connect_to == Ipv4Address{{127, 0, 0, 1}});
}

TEST_CASE("egress: a flow to the gateway's port 53 is served by its DNS server, to its other ports refused") {
  const Ipv4Address gateway{{10, 0, 2, 2}};
  auto allow = policy(EgressMode::kAllowAll, {{"host.test", Ipv4Address{{127, 0, 0, 1}}}});
  FlowPlan dns = plan_flow(to(gateway, 53), allow, gateway);
  CHECK(dns.kind == FlowPlan::Kind::kGatewayDns);
  CHECK(dns.allowed());
  FlowPlan other = plan_flow(to(gateway, 80), allow, gateway);
  CHECK(other.kind == FlowPlan::Kind::kRefuse);
  CHECK(other.reason == "the gateway only serves DNS");
}

TEST_CASE("egress: a flow elsewhere is connected where the policy says, or refused with its reason") {
  const Ipv4Address gateway{{10, 0, 2, 2}};
  auto allow = policy(EgressMode::kAllowAll, {{"host.test", Ipv4Address{{127, 0, 0, 1}}}});
  FlowPlan alias = plan_flow(to(kAliasBase, 8080), allow, gateway);
  CHECK(alias.kind == FlowPlan::Kind::kConnect);
  CHECK(alias.connect_to == Ipv4Address{{127, 0, 0, 1}});
  CHECK(alias.reason == "host alias");
  FlowPlan open = plan_flow(to(Ipv4Address{{93, 184, 216, 34}}, 443), allow, gateway);
  CHECK(open.kind == FlowPlan::Kind::kConnect);
  CHECK(open.connect_to == Ipv4Address{{93, 184, 216, 34}});
  CHECK(open.reason == "allow-all");
  FlowPlan loopback = plan_flow(to(Ipv4Address{{127, 0, 0, 1}}, 22), allow, gateway);
  CHECK(loopback.kind == FlowPlan::Kind::kRefuse);
  CHECK(loopback.reason == "the host's loopback is not reachable");
  FlowPlan denied = plan_flow(to(Ipv4Address{{93, 184, 216, 34}}, 443), policy(EgressMode::kDenyAll), gateway);
  CHECK(denied.kind == FlowPlan::Kind::kRefuse);
  CHECK(denied.reason == "egress denied by policy");
}

TEST_CASE("egress: host aliases are checked when given") {
  CHECK(parse_host_alias("api=127.0.0.1"));
  CHECK(parse_host_alias("api=127.0.0.1")->second == Ipv4Address{{127, 0, 0, 1}});
  CHECK_FALSE(parse_host_alias("api"));
  CHECK_FALSE(parse_host_alias("=127.0.0.1"));
  CHECK_FALSE(parse_host_alias("api=localhost"));
  CHECK_FALSE(parse_host_alias("bad name=1.2.3.4"));
  CHECK_FALSE(parse_host_alias("api=1.2.3.04"));
  CHECK_FALSE(EgressPolicy::make(EgressMode::kDenyAll, {{"a", {}}, {"A", {}}}, kAliasBase, {}));
  std::vector<std::pair<std::string, Ipv4Address>> many;
  for (int i = 0; i < 65; ++i) many.emplace_back("h" + std::to_string(i), Ipv4Address{});
  CHECK_FALSE(EgressPolicy::make(EgressMode::kDenyAll, many, kAliasBase, {}));
  CHECK(parse_egress_mode("allow-all").value() == EgressMode::kAllowAll);
  CHECK_FALSE(parse_egress_mode("allow"));
}

TEST_CASE("dns: an alias answers A with its guest address, in any case, in both modes") {
  for (auto mode : {EgressMode::kAllowAll, EgressMode::kDenyAll}) {
    auto p = policy(mode, {{"files.internal", Ipv4Address{{127, 0, 0, 1}}}});
    auto r = reply_of(plan_dns_answer(query("Files.Internal", wire::DnsType::kA), p, kDnsUdpReplyLimit));
    CHECK(r.id == 0x4242);
    CHECK(r.rcode == wire::DnsRcode::kNoError);
    REQUIRE(r.answers.size() == 1);
    CHECK(std::get<Ipv4Address>(r.answers[0].data) == kAliasBase);
    CHECK(r.questions.at(0).name == "Files.Internal");  // case echoed
    auto aaaa = reply_of(plan_dns_answer(query("files.internal", wire::DnsType::kAaaa), p, kDnsUdpReplyLimit));
    CHECK(aaaa.rcode == wire::DnsRcode::kNoError);
    CHECK(aaaa.answers.empty());
  }
}

TEST_CASE("dns: under deny-all nothing else resolves; under allow-all A and AAAA go to the host") {
  auto deny = policy(EgressMode::kDenyAll);
  CHECK(reply_of(plan_dns_answer(query("example.com", wire::DnsType::kA), deny, kDnsUdpReplyLimit)).rcode ==
        wire::DnsRcode::kNameError);
  auto allow = policy(EgressMode::kAllowAll);
  auto plan = plan_dns_answer(query("example.com", wire::DnsType::kA), allow, kDnsUdpReplyLimit);
  REQUIRE(plan.kind == DnsPlan::Kind::kResolve);
  CHECK(plan.query.questions.at(0).name == "example.com");
  CHECK(plan_dns_answer(query("example.com", wire::DnsType::kAaaa), allow, kDnsUdpReplyLimit).kind ==
        DnsPlan::Kind::kResolve);
  CHECK(reply_of(plan_dns_answer(query("example.com", wire::DnsType::kMx), allow, kDnsUdpReplyLimit)).rcode ==
        wire::DnsRcode::kRefused);

  std::vector<Ipv4Address> found = {Ipv4Address{{1, 2, 3, 4}}, Ipv4Address{{5, 6, 7, 8}}};
  auto r = wire::DnsRepr::parse(dns_resolved_reply(plan.query, found, true, false, kDnsUdpReplyLimit));
  REQUIRE(r);
  REQUIRE(r->answers.size() == 2);
  CHECK(std::get<Ipv4Address>(r->answers[1].data) == found[1]);
  auto nx = wire::DnsRepr::parse(dns_resolved_reply(plan.query, {}, false, false, kDnsUdpReplyLimit));
  CHECK(nx->rcode == wire::DnsRcode::kNameError);
  auto fail = wire::DnsRepr::parse(dns_resolved_reply(plan.query, {}, true, true, kDnsUdpReplyLimit));
  CHECK(fail->rcode == wire::DnsRcode::kServerFailure);
}

TEST_CASE("dns: a reply too big for UDP is truncated so the guest asks over TCP") {
  auto allow = policy(EgressMode::kAllowAll);
  std::string long_name = std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + ".example";
  auto plan = plan_dns_answer(query(long_name, wire::DnsType::kA), allow, kDnsUdpReplyLimit);
  REQUIRE(plan.kind == DnsPlan::Kind::kResolve);
  std::vector<Ipv4Address> found;
  for (std::uint8_t i = 1; i <= 10; ++i) found.push_back(Ipv4Address{{10, 1, 1, i}});
  Bytes udp = dns_resolved_reply(plan.query, found, true, false, kDnsUdpReplyLimit);
  CHECK(udp.size() <= kDnsUdpReplyLimit);
  auto r = wire::DnsRepr::parse(udp);
  REQUIRE(r);
  CHECK(r->truncated);
  CHECK(r->answers.size() < 10);
  auto tcp = wire::DnsRepr::parse(dns_resolved_reply(plan.query, found, true, false, kDnsTcpReplyLimit));
  CHECK_FALSE(tcp->truncated);
  CHECK(tcp->answers.size() == 10);
}

TEST_CASE("dns: malformed queries get FORMERR when their id can be read, and nothing otherwise") {
  auto allow = policy(EgressMode::kAllowAll);
  Bytes garbage(30, std::byte{0xff});
  garbage[0] = std::byte{0x12};
  garbage[1] = std::byte{0x34};
  auto r = reply_of(plan_dns_answer(garbage, allow, kDnsUdpReplyLimit));
  CHECK(r.id == 0x1234);
  CHECK(r.rcode == wire::DnsRcode::kFormatError);
  CHECK(plan_dns_answer(Bytes(5), allow, kDnsUdpReplyLimit).kind == DnsPlan::Kind::kDrop);

  wire::DnsRepr two;
  two.questions = {{"a.example", wire::DnsType::kA, 1}, {"b.example", wire::DnsType::kA, 1}};
  Bytes msg;
  REQUIRE(two.emit(msg));
  CHECK(reply_of(plan_dns_answer(msg, allow, kDnsUdpReplyLimit)).rcode == wire::DnsRcode::kFormatError);

  wire::DnsRepr notify;
  notify.opcode = 4;
  notify.questions = {{"a.example", wire::DnsType::kA, 1}};
  msg.clear();
  REQUIRE(notify.emit(msg));
  CHECK(reply_of(plan_dns_answer(msg, allow, kDnsUdpReplyLimit)).rcode == wire::DnsRcode::kNotImplemented);
}

}  // namespace sandboxd::net
