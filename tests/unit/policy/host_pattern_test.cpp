#include <catch2/catch.hpp>

#include "policy/network_policy.hpp"
#include "policy_test_support.hpp"

using namespace sandboxd::policy;
using sandboxd::policy::test::ip;
using sandboxd::policy::test::range;

namespace {
HostPattern exact(const char* n) { return {HostPattern::Kind::kExact, n}; }
HostPattern suffix(const char* n) { return {HostPattern::Kind::kSuffix, n}; }
HostPattern any() { return {HostPattern::Kind::kAny, ""}; }
}  // namespace

TEST_CASE("host pattern: exact, suffix and any names, with case and trailing dots") {
  struct Case {
    HostPattern pattern;
    const char* host;
    bool matches;
  };
  const Case cases[] = {
      {exact("example.com"), "example.com", true},
      {exact("example.com"), "EXAMPLE.Com", true},
      {exact("example.com"), "example.com.", true},
      {exact("example.com"), "example.com..", false},
      {exact("example.com"), "a.example.com", false},
      {exact("example.com"), "example.co", false},
      {exact("example.com"), "example.comm", false},
      {exact("example.com"), "", false},
      {exact("example.com"), ".", false},
      {suffix("example.com"), "a.example.com", true},
      {suffix("example.com"), "a.b.example.com", true},
      {suffix("example.com"), "A.Example.COM", true},
      {suffix("example.com"), "a.example.com.", true},
      {suffix("example.com"), "example.com", false},
      {suffix("example.com"), "example.com.", false},
      {suffix("example.com"), ".example.com", false},
      {suffix("example.com"), "badexample.com", false},
      {suffix("example.com"), "example.com.evil.net", false},
      {suffix("example.com"), "a.example.com.evil.net", false},
      {suffix("example.com"), "", false},
      {any(), "anything.at.all", true},
      {any(), "localhost", true},
      {any(), "x.", true},
      {any(), "", false},  // an IP-literal flow has no name
      {any(), ".", false},
  };
  for (const auto& c : cases) {
    INFO(c.pattern.to_string() << " vs '" << c.host << "'");
    CHECK(c.pattern.matches(c.host) == c.matches);
  }
}

TEST_CASE("host pattern: prints as written") {
  CHECK(exact("api.example.com").to_string() == "api.example.com");
  CHECK(suffix("example.com").to_string() == "*.example.com");
  CHECK(any().to_string() == "*");
}

TEST_CASE("address range: contains and prints") {
  struct Case {
    const char* range;
    const char* address;
    bool contains;
  };
  const Case cases[] = {
      {"10.0.0.0/8", "10.0.0.0", true},       {"10.0.0.0/8", "10.255.255.255", true},
      {"10.0.0.0/8", "11.0.0.0", false},      {"10.0.0.0/8", "9.255.255.255", false},
      {"0.0.0.0/0", "255.255.255.255", true}, {"0.0.0.0/0", "0.0.0.0", true},
      {"1.2.3.4/32", "1.2.3.4", true},        {"1.2.3.4/32", "1.2.3.5", false},
      {"172.16.0.0/12", "172.31.9.9", true},  {"172.16.0.0/12", "172.32.0.0", false},
  };
  for (const auto& c : cases) {
    INFO(c.range << " " << c.address);
    CHECK(range(c.range).contains(ip(c.address)) == c.contains);
  }
  CHECK(range("10.0.0.0/8").to_string() == "10.0.0.0/8");
  CHECK(range("10.0.0.1/32").to_string() == "10.0.0.1");
  CHECK(range("0.0.0.0/0").to_string() == "0.0.0.0/0");
}

TEST_CASE("network policy: deny_all has no rules; allow_public is a name rule and 0.0.0.0/0") {
  CHECK(NetworkPolicy::deny_all().rules.empty());
  const auto p = NetworkPolicy::allow_public();
  REQUIRE(p.rules.size() == 2);
  REQUIRE(p.rules[0].host.has_value());
  CHECK(p.rules[0].host->kind == HostPattern::Kind::kAny);
  CHECK(p.rules[0].verdict == Verdict::kAllow);
  REQUIRE(p.rules[1].address.has_value());
  CHECK(p.rules[1].address->to_string() == "0.0.0.0/0");
  CHECK(p.rules[1].verdict == Verdict::kAllow);
  CHECK(p == test::policy_of(R"({"rules": [{"host": "*", "verdict": "allow"},
                                        {"address": "0.0.0.0/0", "verdict": "allow"}]})"));
}
