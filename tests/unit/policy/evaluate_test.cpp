#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "policy/evaluate.hpp"
#include "policy_test_support.hpp"

using namespace sandboxd::policy;
using sandboxd::policy::test::ip;
using sandboxd::policy::test::policy_of;

namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);  // no deciding rule: the default or a class

struct Flow {
  const char* host;  // "" for an IP literal
  const char* address;
  std::uint16_t port = 443;
  Scheme scheme = Scheme::kHttps;
  const char* method = nullptr;  // set: the request stage
  const char* path = "/";
};

struct Expect {
  Verdict verdict;
  std::size_t rule = kNone;
  bool per_request = false;
  const char* reason_has = "";
};

Decision decide(const NetworkPolicy& p, const Flow& f) {
  FlowFacts facts;
  facts.host = f.host;
  facts.address = ip(f.address);
  facts.port = f.port;
  facts.scheme = f.scheme;
  if (f.method != nullptr) facts.request = HttpRequestFacts{f.method, f.path};
  return evaluate(p, facts);
}

struct Row {
  Flow flow;
  Expect expect;
};

void check_rows(const NetworkPolicy& p, std::initializer_list<Row> rows) {
  for (const auto& row : rows) {
    const Flow& f = row.flow;
    INFO("flow " << to_string(f.scheme) << " '" << f.host << "' " << f.address << ":" << f.port
                 << (f.method ? std::string(" ") + f.method + " " + f.path : std::string()));
    const Decision d = decide(p, f);
    INFO("reason: " << d.reason);
    CHECK(to_string(d.verdict) == to_string(row.expect.verdict));
    CHECK(d.rule.value_or(kNone) == row.expect.rule);
    CHECK(d.per_request == row.expect.per_request);
    CHECK_FALSE(d.reason.empty());
    CHECK(d.reason.find(row.expect.reason_has) != std::string::npos);
  }
}

constexpr auto kAllow = Verdict::kAllow;
constexpr auto kDeny = Verdict::kDeny;
constexpr auto kAsk = Verdict::kAsk;

}  // namespace

TEST_CASE("evaluate: no rule matching is a deny by default") {
  check_rows(NetworkPolicy::deny_all(),
             {
                 {{"example.com", "93.184.216.34"}, {kDeny, kNone, false, "denied by default"}},
                 {{"", "93.184.216.34", 80, Scheme::kTcp}, {kDeny, kNone, false, "no rule matches tcp to 93.184.216.34 port 80"}},
                 {{"example.com", "93.184.216.34", 443, Scheme::kHttps, "GET", "/x"},
                  {kDeny, kNone, false, "GET /x on https to example.com (93.184.216.34) port 443"}},
             });
}

TEST_CASE("evaluate: the first matching rule decides") {
  const auto p = policy_of(R"({"rules": [
      {"host": "api.example.com", "verdict": "deny"},
      {"host": "*.example.com", "verdict": "allow"},
      {"host": "*", "verdict": "ask", "name": "everything else"}]})");
  check_rows(p, {
                    {{"api.example.com", "1.2.3.4"}, {kDeny, 0, false, "rule 0 (api.example.com) denies"}},
                    {{"API.EXAMPLE.COM.", "1.2.3.4"}, {kDeny, 0, false, "rule 0"}},
                    {{"www.example.com", "1.2.3.4"}, {kAllow, 1, false, "rule 1 (*.example.com) allows"}},
                    {{"a.b.example.com", "1.2.3.4"}, {kAllow, 1}},
                    {{"example.com", "1.2.3.4"}, {kAsk, 2, false, "\"everything else\" (rule 2) asks"}},
                    {{"badexample.com", "1.2.3.4"}, {kAsk, 2}},
                    {{"example.com.evil.net", "1.2.3.4"}, {kAsk, 2}},
                    // "*" needs a name: an IP-literal flow matches no host rule.
                    {{"", "1.2.3.4"}, {kDeny, kNone, false, "denied by default"}},
                });
}

TEST_CASE("evaluate: a rule without ports leaves out 53 and 853; without schemes, udp") {
  check_rows(policy_of(R"({"rules": [{"host": "*", "verdict": "allow"}]})"),
             {
                 {{"a.com", "1.2.3.4", 443, Scheme::kHttps}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 80, Scheme::kHttp}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 22, Scheme::kTcp}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 52, Scheme::kTcp}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 53, Scheme::kTcp}, {kDeny}},
                 {{"a.com", "1.2.3.4", 54, Scheme::kTcp}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 852, Scheme::kTcp}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 853, Scheme::kTcp}, {kDeny}},
                 {{"a.com", "1.2.3.4", 853, Scheme::kHttps}, {kDeny}},
                 {{"a.com", "1.2.3.4", 854, Scheme::kTcp}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 65535, Scheme::kTcp}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 443, Scheme::kUdp}, {kDeny}},
                 {{"a.com", "1.2.3.4", 53, Scheme::kUdp}, {kDeny}},
             });
  check_rows(policy_of(R"({"rules": [{"host": "dns.example", "ports": [53, 853], "schemes": ["udp", "tcp"], "verdict": "allow"},
                                  {"host": "*", "ports": ["1-65535"], "verdict": "allow"}]})"),
             {
                 {{"dns.example", "1.2.3.4", 53, Scheme::kUdp}, {kAllow, 0}},
                 {{"dns.example", "1.2.3.4", 853, Scheme::kTcp}, {kAllow, 0}},
                 {{"dns.example", "1.2.3.4", 853, Scheme::kHttps}, {kAllow, 1}},
                 {{"other.example", "1.2.3.4", 53, Scheme::kTcp}, {kAllow, 1}},
                 {{"other.example", "1.2.3.4", 53, Scheme::kUdp}, {kDeny}},
             });
}

TEST_CASE("evaluate: ports and port ranges, inclusive at both ends") {
  check_rows(policy_of(R"({"rules": [{"host": "*", "ports": [443, "8000-8100"], "verdict": "allow"}]})"),
             {
                 {{"a.com", "1.2.3.4", 443}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 442}, {kDeny}},
                 {{"a.com", "1.2.3.4", 444}, {kDeny}},
                 {{"a.com", "1.2.3.4", 7999}, {kDeny}},
                 {{"a.com", "1.2.3.4", 8000}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 8050}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 8100}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 8101}, {kDeny}},
             });
}

TEST_CASE("evaluate: schemes narrow a rule") {
  check_rows(policy_of(R"({"rules": [{"host": "*", "schemes": ["https"], "verdict": "allow"},
                                  {"host": "*", "schemes": ["udp"], "ports": [443], "verdict": "ask"}]})"),
             {
                 {{"a.com", "1.2.3.4", 443, Scheme::kHttps}, {kAllow, 0}},
                 {{"a.com", "1.2.3.4", 80, Scheme::kHttp}, {kDeny}},
                 {{"a.com", "1.2.3.4", 443, Scheme::kTcp}, {kDeny}},
                 {{"a.com", "1.2.3.4", 443, Scheme::kUdp}, {kAsk, 1}},
             });
}

TEST_CASE("evaluate: methods and paths are checked on each request") {
  const auto p = policy_of(R"({"rules": [
      {"host": "api.example.com", "schemes": ["https"], "methods": ["GET", "HEAD"], "paths": ["/v1/", "/health"],
       "verdict": "allow"}]})");
  check_rows(p, {
                    {{"api.example.com", "1.2.3.4", 443, Scheme::kHttps, "GET", "/v1/items"}, {kAllow, 0}},
                    {{"api.example.com", "1.2.3.4", 443, Scheme::kHttps, "HEAD", "/health"}, {kAllow, 0}},
                    {{"api.example.com", "1.2.3.4", 443, Scheme::kHttps, "GET", "/healthz"}, {kAllow, 0}},
                    {{"api.example.com", "1.2.3.4", 443, Scheme::kHttps, "POST", "/v1/items"}, {kDeny}},
                    {{"api.example.com", "1.2.3.4", 443, Scheme::kHttps, "get", "/v1/items"}, {kDeny}},
                    {{"api.example.com", "1.2.3.4", 443, Scheme::kHttps, "GET", "/v2/items"}, {kDeny}},
                    {{"api.example.com", "1.2.3.4", 443, Scheme::kHttps, "GET", "/v1"}, {kDeny}},
                    {{"api.example.com", "1.2.3.4", 443, Scheme::kHttps, "GET", "/"}, {kDeny}},
                    {{"api.example.com", "1.2.3.4", 80, Scheme::kHttp, "GET", "/v1/"}, {kDeny}},
                });
}

TEST_CASE("evaluate: at the connection, a rule with request conditions makes the decision per request") {
  SECTION("the rule itself is the most permissive") {
    const auto p = policy_of(R"({"rules": [
        {"host": "api.example.com", "schemes": ["https"], "methods": ["GET"], "verdict": "allow"},
        {"host": "*", "verdict": "deny"}]})");
    check_rows(p, {
                      {{"api.example.com", "1.2.3.4"}, {kAllow, 0, true, "each request is decided on its own"}},
                      // A tcp flow brings no request: the rule cannot match it.
                      {{"api.example.com", "1.2.3.4", 443, Scheme::kTcp}, {kDeny, 1}},
                      {{"other.com", "1.2.3.4"}, {kDeny, 1}},
                  });
    const auto d = decide(p, {"api.example.com", "1.2.3.4"});
    CHECK(d.tls == TlsHandling::kIntercept);
  }
  SECTION("a later rule a request could reach allows") {
    const auto p = policy_of(R"({"rules": [
        {"host": "x.example", "schemes": ["https"], "paths": ["/admin"], "verdict": "deny"},
        {"host": "x.example", "verdict": "allow"}]})");
    check_rows(p, {
                      {{"x.example", "1.2.3.4"}, {kAllow, 1, true, "rule 0 (x.example) looks at requests"}},
                      {{"x.example", "1.2.3.4", 443, Scheme::kHttps, "GET", "/admin/users"}, {kDeny, 0}},
                      {{"x.example", "1.2.3.4", 443, Scheme::kHttps, "GET", "/public"}, {kAllow, 1}},
                  });
  }
  SECTION("ask is kept when nothing allows") {
    check_rows(policy_of(R"({"rules": [
        {"host": "x.example", "schemes": ["https"], "methods": ["POST"], "verdict": "ask"},
        {"host": "x.example", "schemes": ["https"], "methods": ["DELETE"], "verdict": "deny"},
        {"host": "*", "verdict": "deny"}]})"),
               {
                   {{"x.example", "1.2.3.4"}, {kAsk, 0, true}},
                   {{"x.example", "1.2.3.4", 443, Scheme::kHttps, "POST", "/"}, {kAsk, 0}},
                   {{"x.example", "1.2.3.4", 443, Scheme::kHttps, "GET", "/"}, {kDeny, 2}},
               });
  }
  SECTION("a rule without request conditions ends the search") {
    check_rows(policy_of(R"({"rules": [
        {"host": "x.example", "schemes": ["https"], "methods": ["GET"], "verdict": "deny"},
        {"host": "*", "verdict": "deny"},
        {"host": "x.example", "verdict": "allow"}]})"),
               {
                   {{"x.example", "1.2.3.4"}, {kDeny, 0, false, "no request on this flow could be allowed"}},
               });
  }
  SECTION("no request could be allowed: a plain deny") {
    check_rows(policy_of(R"({"rules": [
        {"host": "x.example", "schemes": ["https"], "methods": ["GET"], "verdict": "deny"}]})"),
               {
                   {{"x.example", "1.2.3.4"}, {kDeny, 0, false, "rule 0 (x.example) denies"}},
               });
  }
  SECTION("a request rule to a private address opened by a host rule is refused per class") {
    check_rows(policy_of(R"({"rules": [
        {"host": "x.example", "schemes": ["https"], "methods": ["GET"], "verdict": "allow"}]})"),
               {
                   {{"x.example", "10.0.0.1"}, {kDeny, kNone, false, "private address"}},
               });
  }
}

TEST_CASE("evaluate: address rules open a non-public class only from inside it") {
  struct PolicyRows {
    const char* json;
    Row row;
  };
  const PolicyRows cases[] = {
      {R"({"rules": [{"address": "10.1.0.0/16", "verdict": "allow"}]})",
       {{"", "10.1.2.3", 5432, Scheme::kTcp}, {kAllow, 0, false, "rule 0 (10.1.0.0/16) allows"}}},
      {R"({"rules": [{"address": "10.1.0.0/16", "verdict": "allow"}]})",
       {{"db.internal", "10.1.2.3", 5432, Scheme::kTcp}, {kAllow, 0}}},
      {R"({"rules": [{"address": "10.1.0.0/16", "verdict": "allow"}]})",
       {{"", "10.2.0.1", 5432, Scheme::kTcp}, {kDeny, kNone, false, "denied by default"}}},
      {R"({"rules": [{"address": "0.0.0.0/0", "verdict": "allow"}]})",
       {{"", "10.1.2.3", 80, Scheme::kTcp}, {kDeny, kNone, false, "10.1.2.3 is a private address"}}},
      {R"({"rules": [{"address": "0.0.0.0/0", "verdict": "allow"}]})",
       {{"", "8.8.8.8", 80, Scheme::kTcp}, {kAllow, 0}}},
      {R"({"rules": [{"address": "0.0.0.0/0", "verdict": "allow"}]})",
       {{"", "169.254.169.254", 80, Scheme::kHttp}, {kDeny, kNone, false, "link-local"}}},
      {R"({"rules": [{"address": "0.0.0.0/0", "verdict": "ask"}]})",
       {{"", "100.64.0.1", 80, Scheme::kHttp}, {kDeny, kNone, false, "cgnat"}}},
      {R"({"rules": [{"address": "169.254.169.254", "verdict": "allow"}]})",
       {{"", "169.254.169.254", 80, Scheme::kHttp}, {kAllow, 0}}},
      {R"({"rules": [{"address": "169.254.169.254/32", "verdict": "ask"}]})",
       {{"metadata.google.internal", "169.254.169.254", 80, Scheme::kHttp}, {kAsk, 0}}},
      {R"({"rules": [{"address": "127.0.0.1/32", "verdict": "allow"}]})",
       {{"", "127.0.0.1", 8080, Scheme::kTcp}, {kDeny, kNone, false, "loopback address, never reachable"}}},
      {R"({"rules": [{"address": "127.0.0.0/8", "verdict": "allow"}]})",
       {{"localhost", "127.0.0.1", 8080, Scheme::kTcp}, {kDeny, kNone, false, "loopback"}}},
      {R"({"rules": [{"address": "224.0.0.0/4", "ports": [5353], "schemes": ["udp"], "verdict": "allow"}]})",
       {{"", "224.0.0.251", 5353, Scheme::kUdp}, {kDeny, kNone, false, "multicast"}}},
      {R"({"rules": [{"address": "255.255.255.255", "schemes": ["udp"], "verdict": "allow"}]})",
       {{"", "255.255.255.255", 67, Scheme::kUdp}, {kDeny, kNone, false, "broadcast"}}},
      {R"({"rules": [{"address": "0.0.0.0", "verdict": "allow"}]})",
       {{"", "0.0.0.0", 80, Scheme::kTcp}, {kDeny, kNone, false, "unspecified"}}},
      {R"({"rules": [{"address": "0.0.0.0/8", "verdict": "allow"}]})",
       {{"", "0.1.2.3", 80, Scheme::kTcp}, {kAllow, 0}}},
      {R"({"rules": [{"address": "192.0.2.0/24", "verdict": "allow"}]})",
       {{"", "192.0.2.9", 80, Scheme::kTcp}, {kAllow, 0}}},
      {R"({"rules": [{"address": "198.18.0.0/15", "verdict": "allow"}]})",
       {{"", "198.19.255.1", 80, Scheme::kTcp}, {kAllow, 0}}},
      {R"({"rules": [{"address": "240.0.0.0/4", "verdict": "allow"}]})",
       {{"", "240.0.0.1", 80, Scheme::kTcp}, {kAllow, 0}}},
      {R"({"rules": [{"address": "::ffff:10.0.0.1", "verdict": "allow"}]})",
       {{"", "10.0.0.1", 80, Scheme::kTcp}, {kAllow, 0, false, "rule 0 (10.0.0.1) allows"}}},
      // A host rule never opens a non-public address, whatever the name resolves to.
      {R"({"rules": [{"host": "*", "verdict": "allow"}]})",
       {{"intranet.corp", "10.0.0.1", 443, Scheme::kHttps},
        {kDeny, kNone, false, "only an address rule inside 10.0.0.0/8 opens, and rule 0 (*) is not one"}}},
      {R"({"rules": [{"host": "metadata.google.internal", "verdict": "allow"}]})",
       {{"metadata.google.internal", "169.254.169.254", 80, Scheme::kHttp}, {kDeny, kNone, false, "link-local"}}},
      {R"({"rules": [{"host": "*", "verdict": "allow"}]})",
       {{"evil.example", "127.0.0.1", 80, Scheme::kHttp}, {kDeny, kNone, false, "loopback"}}},
      // The first match decides even when its class refuses: a later address rule is not reached.
      {R"({"rules": [{"host": "*", "verdict": "allow"}, {"address": "10.0.0.0/8", "verdict": "allow"}]})",
       {{"intranet.corp", "10.0.0.1", 443, Scheme::kHttps}, {kDeny, kNone, false, "private"}}},
      {R"({"rules": [{"address": "10.0.0.0/8", "verdict": "allow"}, {"host": "*", "verdict": "allow"}]})",
       {{"intranet.corp", "10.0.0.1", 443, Scheme::kHttps}, {kAllow, 0}}},
      // A deny rule needs no class check.
      {R"({"rules": [{"address": "0.0.0.0/0", "verdict": "deny"}]})",
       {{"", "10.0.0.1", 443, Scheme::kHttps}, {kDeny, 0, false, "rule 0 (0.0.0.0/0) denies"}}},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    check_rows(policy_of(c.json), {c.row});
  }
}

TEST_CASE("evaluate: allow_public opens public addresses by name or literal, nothing else") {
  check_rows(NetworkPolicy::allow_public(),
             {
                 {{"example.com", "93.184.216.34"}, {kAllow, 0}},
                 {{"", "93.184.216.34", 22, Scheme::kTcp}, {kAllow, 1, false, "rule 1 (0.0.0.0/0) allows"}},
                 {{"example.com", "10.0.0.1"}, {kDeny, kNone, false, "private"}},
                 {{"", "10.0.0.1", 22, Scheme::kTcp}, {kDeny, kNone, false, "private"}},
                 {{"", "172.16.0.1", 22, Scheme::kTcp}, {kDeny}},
                 {{"", "192.168.1.1", 22, Scheme::kTcp}, {kDeny}},
                 {{"", "169.254.169.254", 80, Scheme::kHttp}, {kDeny}},
                 {{"", "127.0.0.1", 80, Scheme::kHttp}, {kDeny, kNone, false, "loopback"}},
                 {{"", "8.8.8.8", 53, Scheme::kTcp}, {kDeny, kNone, false, "denied by default"}},
                 {{"", "8.8.8.8", 53, Scheme::kUdp}, {kDeny}},
                 {{"", "1.1.1.1", 853, Scheme::kTcp}, {kDeny}},
                 {{"quic.example", "1.2.3.4", 443, Scheme::kUdp}, {kDeny}},
             });
}

TEST_CASE("evaluate: an allowing rule's TLS handling comes with the decision") {
  const auto p = policy_of(R"({"rules": [
      {"host": "pinned.example", "tls": "passthrough", "verdict": "allow"},
      {"host": "*", "verdict": "allow"}]})");
  CHECK(decide(p, {"pinned.example", "1.2.3.4"}).tls == TlsHandling::kPassthrough);
  CHECK(decide(p, {"other.example", "1.2.3.4"}).tls == TlsHandling::kIntercept);
}

TEST_CASE("name_may_be_allowed: host rules only, in order, with deny rules shadowing what they cover") {
  struct Case {
    const char* json;
    const char* host;
    bool may;
  };
  const Case cases[] = {
      {R"({"rules": []})", "example.com", false},
      {R"({"rules": [{"host": "*", "verdict": "allow"}]})", "example.com", true},
      {R"({"rules": [{"host": "*", "verdict": "allow"}]})", "", false},
      {R"({"rules": [{"host": "*", "verdict": "ask"}]})", "example.com", true},
      {R"({"rules": [{"host": "*.example.com", "verdict": "allow"}]})", "a.example.com", true},
      {R"({"rules": [{"host": "*.example.com", "verdict": "allow"}]})", "A.EXAMPLE.COM.", true},
      {R"({"rules": [{"host": "*.example.com", "verdict": "allow"}]})", "example.com", false},
      {R"({"rules": [{"host": "*.example.com", "verdict": "allow"}]})", "badexample.com", false},
      {R"({"rules": [{"host": "evil.com", "verdict": "deny"}, {"host": "*", "verdict": "allow"}]})", "evil.com", false},
      {R"({"rules": [{"host": "evil.com", "verdict": "deny"}, {"host": "*", "verdict": "allow"}]})", "good.com", true},
      {R"({"rules": [{"host": "evil.com", "verdict": "deny"}, {"host": "*", "verdict": "ask"}]})", "evil.com", false},
      {R"({"rules": [{"host": "evil.com", "verdict": "ask"}, {"host": "*", "verdict": "deny"}]})", "evil.com", true},
      // A deny on some ports leaves the others to the allow.
      {R"({"rules": [{"host": "evil.com", "ports": [80], "verdict": "deny"}, {"host": "*", "verdict": "allow"}]})",
       "evil.com", true},
      // Ports and schemes the deny leaves out: 53 and udp.
      {R"({"rules": [{"host": "evil.com", "verdict": "deny"},
                     {"host": "*", "ports": [53], "schemes": ["udp"], "verdict": "allow"}]})", "evil.com", true},
      {R"({"rules": [{"host": "evil.com", "ports": ["1-65535"], "schemes": ["tcp", "udp", "http", "https"], "verdict": "deny"},
                     {"host": "*", "ports": [53], "schemes": ["udp"], "verdict": "allow"}]})", "evil.com", false},
      // Two denies covering the allow between them.
      {R"({"rules": [{"host": "evil.com", "ports": ["1-1000"], "verdict": "deny"},
                     {"host": "evil.com", "ports": ["1001-65535"], "verdict": "deny"},
                     {"host": "*", "ports": [443, "8000-9000"], "verdict": "allow"}]})", "evil.com", false},
      {R"({"rules": [{"host": "evil.com", "ports": ["1-1000"], "verdict": "deny"},
                     {"host": "evil.com", "ports": ["1002-65535"], "verdict": "deny"},
                     {"host": "*", "ports": ["1-65535"], "verdict": "allow"}]})", "evil.com", true},
      // A deny that looks at requests shadows nothing.
      {R"({"rules": [{"host": "evil.com", "schemes": ["https"], "paths": ["/"], "verdict": "deny"},
                     {"host": "*", "schemes": ["https"], "verdict": "allow"}]})", "evil.com", true},
      {R"({"rules": [{"host": "api.example.com", "schemes": ["https"], "methods": ["GET"], "verdict": "allow"}]})",
       "api.example.com", true},
      // Address rules never make a name resolvable.
      {R"({"rules": [{"address": "0.0.0.0/0", "verdict": "allow"}]})", "example.com", false},
      {R"({"rules": [{"address": "10.0.0.0/8", "verdict": "allow"}]})", "intranet.corp", false},
  };
  for (const auto& c : cases) {
    INFO(c.json << " host '" << c.host << "'");
    CHECK(name_may_be_allowed(policy_of(c.json), c.host) == c.may);
  }
}

TEST_CASE("answer_address_allowed: rebinding to a non-public address needs an address rule inside its class") {
  struct Case {
    const char* json;
    const char* host;
    const char* address;
    bool allowed;
  };
  const char* kAnyName = R"({"rules": [{"host": "*", "verdict": "allow"}]})";
  const Case cases[] = {
      {kAnyName, "a.com", "93.184.216.34", true},
      {kAnyName, "a.com", "127.0.0.1", false},
      {kAnyName, "a.com", "10.0.0.1", false},
      {kAnyName, "a.com", "192.168.1.1", false},
      {kAnyName, "a.com", "169.254.169.254", false},
      {kAnyName, "a.com", "100.64.0.1", false},
      {kAnyName, "a.com", "0.0.0.0", false},
      {kAnyName, "a.com", "224.0.0.1", false},
      {kAnyName, "a.com", "255.255.255.255", false},
      {kAnyName, "a.com", "192.0.2.1", false},
      {R"({"rules": [{"address": "10.0.0.0/8", "verdict": "allow"}, {"host": "*", "verdict": "allow"}]})", "a.com",
       "10.0.0.1", true},
      {R"({"rules": [{"address": "10.0.0.0/8", "verdict": "ask"}, {"host": "*", "verdict": "allow"}]})", "a.com",
       "10.0.0.1", true},
      {R"({"rules": [{"address": "10.0.0.0/8", "verdict": "deny"}, {"host": "*", "verdict": "allow"}]})", "a.com",
       "10.0.0.1", false},
      // The host rule comes first and decides every such flow (refusing it).
      {R"({"rules": [{"host": "*", "verdict": "allow"}, {"address": "10.0.0.0/8", "verdict": "allow"}]})", "a.com",
       "10.0.0.1", false},
      // ...unless it leaves ports to the address rule.
      {R"({"rules": [{"host": "*", "ports": [443], "verdict": "allow"}, {"address": "10.0.0.0/8", "verdict": "allow"}]})",
       "a.com", "10.0.0.1", true},
      {R"({"rules": [{"address": "0.0.0.0/0", "verdict": "allow"}, {"host": "*", "verdict": "allow"}]})", "a.com",
       "10.0.0.1", false},
      {R"({"rules": [{"address": "169.254.169.254/32", "verdict": "allow"}]})", "metadata.google.internal",
       "169.254.169.254", true},
      {R"({"rules": [{"address": "169.254.169.254/32", "verdict": "allow"}]})", "metadata.google.internal",
       "169.254.169.253", false},
      {R"({"rules": [{"address": "127.0.0.1/32", "verdict": "allow"}]})", "localhost", "127.0.0.1", false},
      {R"({"rules": [{"address": "10.1.0.0/16", "verdict": "allow"}]})", "db.internal", "10.1.2.3", true},
      {R"({"rules": [{"address": "10.1.0.0/16", "verdict": "allow"}]})", "db.internal", "10.2.0.1", false},
      {R"({"rules": [{"address": "::ffff:10.0.0.1", "verdict": "allow"}]})", "db.internal", "10.0.0.1", true},
  };
  for (const auto& c : cases) {
    INFO(c.json << " " << c.host << " -> " << c.address);
    CHECK(answer_address_allowed(policy_of(c.json), c.host, ip(c.address)) == c.allowed);
  }
}

TEST_CASE("evaluate: an address the operator chose (a host alias) skips the class check, never the rules") {
  const NetworkPolicy p = policy_of(R"({"rules": [{"host": "files.internal", "ports": [8080], "verdict": "allow"}]})");
  FlowFacts flow;
  flow.host = "files.internal";
  flow.address = ip("10.0.2.100");
  flow.port = 8080;
  flow.scheme = Scheme::kTcp;
  CHECK_FALSE(evaluate(p, flow).allows());  // a private address a host rule does not open
  flow.operator_address = true;
  const Decision allowed = evaluate(p, flow);
  CHECK(allowed.allows());
  CHECK(allowed.rule == std::size_t{0});
  flow.port = 8081;
  CHECK_FALSE(evaluate(p, flow).allows());  // the rules still apply
  flow.port = 8080;
  flow.host = "other.internal";
  CHECK_FALSE(evaluate(p, flow).allows());
}
