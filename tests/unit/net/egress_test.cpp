// The egress decision point, the plan it makes for each new flow, the names
// addresses are pinned to, and the gateway's DNS answers: pure rules.
#include <catch2/catch.hpp>

#include "daemon/net/egress/dns_answer.hpp"
#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/egress/flow_plan.hpp"
#include "daemon/net/egress/name_pins.hpp"
#include "policy/policy_json.hpp"

namespace sandboxd::net {
namespace {

using wire::Ipv4Address;

const Ipv4Address kAliasBase{{10, 0, 2, 100}};
const Ipv4Address kGuest{{10, 0, 2, 15}};

EgressPolicy policy(EgressMode mode, AliasList aliases = {}, std::vector<Ipv4Address> host = {}) {
  auto p = EgressPolicy::make(policy_for_mode(mode, aliases), aliases, kAliasBase, std::move(host));
  REQUIRE(p);
  return *p;
}

// A policy from its JSON text, with these aliases.
EgressPolicy rules(std::string_view json, AliasList aliases = {}) {
  auto parsed = policy::parse_policy(as_bytes(json));
  if (!parsed) FAIL(parsed.error().to_string());
  auto p = EgressPolicy::make(*parsed, aliases, kAliasBase, {});
  REQUIRE(p);
  return *p;
}

FlowKey to(Ipv4Address ip, std::uint16_t port = 80) { return FlowKey{kGuest, 40000, ip, port}; }

EgressDecision tcp(const EgressPolicy& p, Ipv4Address ip, std::uint16_t port = 80, std::string_view name = {}) {
  return p.decide(to(ip, port), policy::Scheme::kTcp, name);
}

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

TEST_CASE("egress: allow-all opens public destinations but nothing private and never the host itself") {
  Ipv4Address host_eth{{172, 17, 0, 5}};
  auto p = policy(EgressMode::kAllowAll, {}, {host_eth, Ipv4Address{{127, 0, 0, 1}}});
  auto d = tcp(p, Ipv4Address{{93, 184, 216, 34}});
  CHECK(d.allowed);
  CHECK(d.connect_to == Ipv4Address{{93, 184, 216, 34}});
  CHECK(tcp(p, Ipv4Address{{93, 184, 216, 34}}, 443, "example.com").allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{192, 168, 1, 1}}).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{169, 254, 169, 254}}).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{127, 0, 0, 1}}).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{127, 1, 2, 3}}).allowed);
  CHECK_FALSE(tcp(p, host_eth).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{}).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{224, 0, 0, 1}}).allowed);
  CHECK(tcp(p, host_eth).reason == "the host's own addresses are not reachable");
  // DNS and DNS over TLS to another resolver need a rule naming the port.
  CHECK_FALSE(tcp(p, Ipv4Address{{8, 8, 8, 8}}, 53).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{8, 8, 8, 8}}, 853).allowed);
  // UDP (QUIC among it) needs a rule that says udp.
  CHECK_FALSE(p.decide(to(Ipv4Address{{93, 184, 216, 34}}, 443), policy::Scheme::kUdp, "example.com").allowed);
}

TEST_CASE("egress: deny-all denies everything but host aliases, which reach the host's loopback") {
  auto p = policy(EgressMode::kDenyAll, {{"Files.Internal", Ipv4Address{{127, 0, 0, 1}}}, {"db", Ipv4Address{{10, 9, 8, 7}}}});
  auto denied = tcp(p, Ipv4Address{{93, 184, 216, 34}});
  CHECK_FALSE(denied.allowed);
  CHECK_FALSE(denied.reason.empty());
  REQUIRE(p.resolve_alias("files.internal.") == kAliasBase);
  REQUIRE(p.resolve_alias("DB") == Ipv4Address{{10, 0, 2, 101}});
  CHECK_FALSE(p.resolve_alias("other"));
  auto d = tcp(p, kAliasBase, 8080);
  CHECK(d.allowed);
  CHECK(d.connect_to == Ipv4Address{{127, 0, 0, 1}});
  // The alias is known by its own name, whatever the pins say.
  CHECK(tcp(p, kAliasBase, 8080, "evil.example").allowed);
}

TEST_CASE("egress: rules judge a flow by the name its address was pinned to, an IP literal by address rules alone") {
  auto p = rules(R"({"rules": [
      {"host": "api.example.com", "ports": [443], "verdict": "allow"},
      {"host": "*.cdn.example", "verdict": "allow"},
      {"address": "10.20.0.0/16", "ports": [5432], "verdict": "allow"},
      {"host": "blocked.example.com", "verdict": "deny", "name": "no blocked"}]})");
  const Ipv4Address public_ip{{93, 184, 216, 34}};
  CHECK(tcp(p, public_ip, 443, "api.example.com").allowed);
  CHECK(tcp(p, public_ip, 443, "API.Example.Com.").allowed);
  CHECK_FALSE(tcp(p, public_ip, 80, "api.example.com").allowed);
  CHECK_FALSE(tcp(p, public_ip, 443).allowed);  // no name: an IP literal
  CHECK(tcp(p, public_ip, 8080, "img.cdn.example").allowed);
  CHECK_FALSE(tcp(p, public_ip, 8080, "cdn.example").allowed);
  auto blocked = tcp(p, public_ip, 443, "blocked.example.com");
  CHECK_FALSE(blocked.allowed);
  CHECK(blocked.reason.find("no blocked") != std::string::npos);
  // An address rule inside a private range opens it; a name cannot.
  CHECK(tcp(p, Ipv4Address{{10, 20, 1, 2}}, 5432).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{10, 20, 1, 2}}, 5433).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{10, 21, 1, 2}}, 5432).allowed);
  CHECK_FALSE(tcp(p, Ipv4Address{{10, 0, 0, 1}}, 443, "api.example.com").allowed);
  // Ask and per-request verdicts cannot hold a flow yet: refused, with why.
  auto asks = rules(R"({"rules": [{"host": "ask.example", "verdict": "ask"}]})");
  auto held = tcp(asks, public_ip, 443, "ask.example");
  CHECK_FALSE(held.allowed);
  CHECK(held.reason.find("approval") != std::string::npos);
}

TEST_CASE("egress: an alias is subject to the rules by its name") {
  AliasList aliases{{"allowed.test", Ipv4Address{{127, 0, 0, 1}}}, {"denied.test", Ipv4Address{{127, 0, 0, 1}}}};
  auto p = rules(R"({"rules": [{"host": "allowed.test", "verdict": "allow"}]})", aliases);
  auto allowed = tcp(p, kAliasBase, 8080);
  CHECK(allowed.allowed);
  CHECK(allowed.connect_to == Ipv4Address{{127, 0, 0, 1}});
  CHECK_FALSE(tcp(p, Ipv4Address{{10, 0, 2, 101}}, 8080).allowed);
  CHECK(p.may_resolve("allowed.test"));
  CHECK_FALSE(p.may_resolve("denied.test"));
}

TEST_CASE("egress: a name's resolved addresses are given only where the rules allow, never the host's own") {
  Ipv4Address host_eth{{203, 0, 113, 9}};
  auto parsed = policy::parse_policy(as_bytes(std::string_view(
      R"({"rules": [{"address": "10.5.0.0/16", "verdict": "allow"}, {"host": "*", "verdict": "allow"}]})")));
  REQUIRE(parsed);
  auto made = EgressPolicy::make(*parsed, {}, kAliasBase, {host_eth});
  REQUIRE(made);
  const EgressPolicy& p = *made;
  CHECK(p.answer_allowed("example.com", Ipv4Address{{93, 184, 216, 34}}));
  CHECK_FALSE(p.answer_allowed("example.com", Ipv4Address{{127, 0, 0, 1}}));
  CHECK_FALSE(p.answer_allowed("example.com", Ipv4Address{{10, 0, 0, 1}}));
  CHECK_FALSE(p.answer_allowed("example.com", Ipv4Address{{169, 254, 169, 254}}));
  CHECK_FALSE(p.answer_allowed("example.com", Ipv4Address{{0, 0, 0, 0}}));
  CHECK_FALSE(p.answer_allowed("example.com", host_eth));
  CHECK(p.answer_allowed("example.com", Ipv4Address{{10, 5, 1, 1}}));
}

TEST_CASE("egress: a flow to the gateway's port 53 is served by its DNS server, to its other ports refused") {
  const Ipv4Address gateway{{10, 0, 2, 2}};
  auto allow = policy(EgressMode::kAllowAll, {{"host.test", Ipv4Address{{127, 0, 0, 1}}}});
  FlowPlan dns = plan_flow(to(gateway, 53), policy::Scheme::kUdp, allow, {}, gateway);
  CHECK(dns.kind == FlowPlan::Kind::kGatewayDns);
  CHECK(dns.allowed());
  FlowPlan other = plan_flow(to(gateway, 80), policy::Scheme::kTcp, allow, {}, gateway);
  CHECK(other.kind == FlowPlan::Kind::kRefuse);
  CHECK(other.reason == "the gateway only serves DNS");
}

TEST_CASE("egress: a flow elsewhere is connected where the policy says, or refused with its reason") {
  const Ipv4Address gateway{{10, 0, 2, 2}};
  auto allow = policy(EgressMode::kAllowAll, {{"host.test", Ipv4Address{{127, 0, 0, 1}}}});
  FlowPlan alias = plan_flow(to(kAliasBase, 8080), policy::Scheme::kTcp, allow, {}, gateway);
  CHECK(alias.kind == FlowPlan::Kind::kConnect);
  CHECK(alias.connect_to == Ipv4Address{{127, 0, 0, 1}});
  CHECK(alias.reason.find("host alias") != std::string::npos);
  FlowPlan open = plan_flow(to(Ipv4Address{{93, 184, 216, 34}}, 443), policy::Scheme::kTcp, allow, {}, gateway);
  CHECK(open.kind == FlowPlan::Kind::kConnect);
  CHECK(open.connect_to == Ipv4Address{{93, 184, 216, 34}});
  CHECK_FALSE(open.reason.empty());
  FlowPlan loopback = plan_flow(to(Ipv4Address{{127, 0, 0, 1}}, 22), policy::Scheme::kTcp, allow, {}, gateway);
  CHECK(loopback.kind == FlowPlan::Kind::kRefuse);
  CHECK(loopback.reason == "the host's loopback is not reachable");
  FlowPlan denied = plan_flow(to(Ipv4Address{{93, 184, 216, 34}}, 443), policy::Scheme::kTcp,
                              policy(EgressMode::kDenyAll), "example.com", gateway);
  CHECK(denied.kind == FlowPlan::Kind::kRefuse);
  CHECK_FALSE(denied.reason.empty());
}

TEST_CASE("egress: host aliases are checked when given") {
  CHECK(parse_host_alias("api=127.0.0.1"));
  CHECK(parse_host_alias("api=127.0.0.1")->second == Ipv4Address{{127, 0, 0, 1}});
  CHECK_FALSE(parse_host_alias("api"));
  CHECK_FALSE(parse_host_alias("=127.0.0.1"));
  CHECK_FALSE(parse_host_alias("api=localhost"));
  CHECK_FALSE(parse_host_alias("bad name=1.2.3.4"));
  CHECK_FALSE(parse_host_alias("api=1.2.3.04"));
  CHECK_FALSE(EgressPolicy::make({}, {{"a", {}}, {"A", {}}}, kAliasBase, {}));
  AliasList many;
  for (int i = 0; i < 65; ++i) many.emplace_back("h" + std::to_string(i), Ipv4Address{});
  CHECK_FALSE(EgressPolicy::make({}, many, kAliasBase, {}));
  CHECK(parse_egress_mode("allow-all").value() == EgressMode::kAllowAll);
  CHECK_FALSE(parse_egress_mode("allow"));
}

TEST_CASE("name pins: the latest answer wins, the oldest pin goes first, and clear forgets all") {
  NamePins pins(3);
  const Ipv4Address a{{1, 1, 1, 1}}, b{{2, 2, 2, 2}}, c{{3, 3, 3, 3}}, d{{4, 4, 4, 4}};
  CHECK(pins.name_for(a).empty());
  pins.pin(a, "one.example");
  pins.pin(b, "two.example");
  pins.pin(a, "cdn.example");
  CHECK(pins.name_for(a) == "cdn.example");
  pins.pin(c, "three.example");
  pins.pin(d, "four.example");  // over capacity: b is now the oldest
  CHECK(pins.size() == 3);
  CHECK(pins.name_for(b).empty());
  CHECK(pins.name_for(a) == "cdn.example");
  CHECK(pins.name_for(d) == "four.example");
  for (int i = 0; i < 100; ++i) pins.pin(a, "again.example");  // re-pinning stays bounded
  CHECK(pins.size() <= 3);
  CHECK(pins.name_for(a) == "again.example");
  pins.clear();
  CHECK(pins.size() == 0);
  CHECK(pins.name_for(a).empty());
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

TEST_CASE("dns: names no rule allows are answered without a lookup; allowed A goes to the host, other types get nothing") {
  auto deny = policy(EgressMode::kDenyAll);
  CHECK(reply_of(plan_dns_answer(query("example.com", wire::DnsType::kA), deny, kDnsUdpReplyLimit)).rcode ==
        wire::DnsRcode::kNameError);
  auto refusing = rules(R"({"rules": [{"host": "ok.example", "verdict": "allow"}], "denied_names": "refused"})");
  CHECK(reply_of(plan_dns_answer(query("example.com", wire::DnsType::kA), refusing, kDnsUdpReplyLimit)).rcode ==
        wire::DnsRcode::kRefused);
  CHECK(plan_dns_answer(query("OK.example", wire::DnsType::kA), refusing, kDnsUdpReplyLimit).kind ==
        DnsPlan::Kind::kResolve);
  auto allow = policy(EgressMode::kAllowAll);
  auto plan = plan_dns_answer(query("example.com", wire::DnsType::kA), allow, kDnsUdpReplyLimit);
  REQUIRE(plan.kind == DnsPlan::Kind::kResolve);
  CHECK(plan.query.questions.at(0).name == "example.com");
  for (auto type : {wire::DnsType::kAaaa, wire::DnsType::kMx, wire::DnsType::kTxt, wire::DnsType::kCname}) {
    auto r = reply_of(plan_dns_answer(query("example.com", type), allow, kDnsUdpReplyLimit));
    CHECK(r.rcode == wire::DnsRcode::kNoError);
    CHECK(r.answers.empty());
  }

  std::vector<Ipv4Address> found = {Ipv4Address{{1, 2, 3, 4}}, Ipv4Address{{5, 6, 7, 8}}};
  auto r = wire::DnsRepr::parse(dns_resolved_reply(plan.query, found, ResolvedOutcome::kFound, kDnsUdpReplyLimit));
  REQUIRE(r);
  REQUIRE(r->answers.size() == 2);
  CHECK(std::get<Ipv4Address>(r->answers[1].data) == found[1]);
  auto nx = wire::DnsRepr::parse(dns_resolved_reply(plan.query, {}, ResolvedOutcome::kNoSuchName, kDnsUdpReplyLimit));
  CHECK(nx->rcode == wire::DnsRcode::kNameError);
  auto fail = wire::DnsRepr::parse(dns_resolved_reply(plan.query, {}, ResolvedOutcome::kFailed, kDnsUdpReplyLimit));
  CHECK(fail->rcode == wire::DnsRcode::kServerFailure);
  auto refused = wire::DnsRepr::parse(dns_resolved_reply(plan.query, {}, ResolvedOutcome::kRefused, kDnsUdpReplyLimit));
  CHECK(refused->rcode == wire::DnsRcode::kRefused);
}
TEST_CASE("dns: a reply too big for UDP is truncated so the guest asks over TCP") {
  auto allow = policy(EgressMode::kAllowAll);
  std::string long_name = std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + ".example";
  auto plan = plan_dns_answer(query(long_name, wire::DnsType::kA), allow, kDnsUdpReplyLimit);
  REQUIRE(plan.kind == DnsPlan::Kind::kResolve);
  std::vector<Ipv4Address> found;
  for (std::uint8_t i = 1; i <= 10; ++i) found.push_back(Ipv4Address{{10, 1, 1, i}});
  Bytes udp = dns_resolved_reply(plan.query, found, ResolvedOutcome::kFound, kDnsUdpReplyLimit);
  CHECK(udp.size() <= kDnsUdpReplyLimit);
  auto r = wire::DnsRepr::parse(udp);
  REQUIRE(r);
  CHECK(r->truncated);
  CHECK(r->answers.size() < 10);
  auto tcp = wire::DnsRepr::parse(dns_resolved_reply(plan.query, found, ResolvedOutcome::kFound, kDnsTcpReplyLimit));
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
