#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>

#include "policy/policy_json.hpp"
#include "policy_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::policy;
using sandboxd::policy::test::policy_of;

namespace {

// A document of one rule, with `members` spliced in.
std::string one_rule(const std::string& members) { return R"({"rules": [{)" + members + "}]}"; }

}  // namespace

TEST_CASE("policy json: a rich policy reads into the model") {
  const auto p = policy_of(R"({
    "rules": [
      {"host": "API.GitHub.com.", "ports": [443, "8000-8100"], "schemes": ["https", "http"],
       "methods": ["GET", "POST"], "paths": ["/repos/", "/user"], "verdict": "allow", "name": "github api"},
      {"host": "*.pypi.org", "verdict": "ask"},
      {"host": "pinned.example", "schemes": ["https"], "tls": "passthrough", "verdict": "allow"},
      {"address": "10.1.0.0/16", "ports": [5432], "schemes": ["tcp"], "verdict": "allow"},
      {"address": "::ffff:169.254.169.254", "verdict": "deny"},
      {"host": "*", "ports": [53], "schemes": ["udp"], "verdict": "deny"}
    ],
    "denied_names": "refused"})");
  REQUIRE(p.rules.size() == 6);
  CHECK(p.denied_names == DeniedNameAnswer::kRefused);
  const Rule& gh = p.rules[0];
  REQUIRE(gh.host.has_value());
  CHECK(gh.host->kind == HostPattern::Kind::kExact);
  CHECK(gh.host->name == "api.github.com");
  CHECK(gh.ports == std::vector<PortRange>{{443, 443}, {8000, 8100}});
  CHECK(gh.schemes == std::vector<Scheme>{Scheme::kHttps, Scheme::kHttp});
  CHECK(gh.methods == std::vector<std::string>{"GET", "POST"});
  CHECK(gh.path_prefixes == std::vector<std::string>{"/repos/", "/user"});
  CHECK(gh.verdict == Verdict::kAllow);
  CHECK(gh.label == "github api");
  CHECK(p.rules[1].host->kind == HostPattern::Kind::kSuffix);
  CHECK(p.rules[1].host->name == "pypi.org");
  CHECK(p.rules[2].tls == TlsHandling::kPassthrough);
  REQUIRE(p.rules[3].address.has_value());
  CHECK(p.rules[3].address->to_string() == "10.1.0.0/16");
  REQUIRE(p.rules[4].address.has_value());
  CHECK(p.rules[4].address->to_string() == "169.254.169.254");
  CHECK(p.rules[5].host->kind == HostPattern::Kind::kAny);
  CHECK(policy_of(R"({"rules": []})") == NetworkPolicy::deny_all());
  CHECK(policy_of(R"({"rules": [], "denied_names": "nxdomain"})") == NetworkPolicy::deny_all());
}

TEST_CASE("policy json: the canonical form reads back to an equal policy") {
  const auto p = policy_of(R"({
    "rules": [
      {"host": "API.GitHub.com.", "ports": [443, "8000-8100", "22-22"], "schemes": ["https", "http"],
       "methods": ["GET", "POST"], "paths": ["/repos/", "/user"], "verdict": "allow", "name": "github api"},
      {"host": "*.pypi.org", "tls": "intercept", "verdict": "ask"},
      {"host": "pinned.example", "schemes": ["https"], "tls": "passthrough", "verdict": "allow"},
      {"address": "10.1.0.0/16", "ports": [5432], "schemes": ["tcp", "udp"], "verdict": "allow"},
      {"address": "::ffff:169.254.169.254", "verdict": "deny"},
      {"address": "0.0.0.0/0", "verdict": "allow"}
    ],
    "denied_names": "refused"})");
  const auto written = policy_to_json(p);
  auto back = policy_from_json(written);
  REQUIRE(back.has_value());
  CHECK(*back == p);
  // Written once more, the text is the same: the form is canonical.
  CHECK(boost::json::serialize(policy_to_json(*back)) == boost::json::serialize(written));
  const std::string text = boost::json::serialize(written);
  INFO(text);
  CHECK(text.find(R"("host":"api.github.com")") != std::string::npos);
  CHECK(text.find(R"("ports":[443,"8000-8100",22])") != std::string::npos);
  CHECK(text.find(R"("address":"169.254.169.254")") != std::string::npos);
  CHECK(text.find("intercept") == std::string::npos);

  for (const auto& fixed : {NetworkPolicy::deny_all(), NetworkPolicy::allow_public()}) {
    auto again = policy_from_json(policy_to_json(fixed));
    REQUIRE(again.has_value());
    CHECK(*again == fixed);
  }
}

TEST_CASE("policy json: accepted spellings of hosts, addresses and ports") {
  struct Case {
    std::string member;
    std::string canonical;  // the rule's target or ports as policy_to_json writes them
  };
  const Case cases[] = {
      {R"("host": "Example.COM")", R"("host":"example.com")"},
      {R"("host": "example.com.")", R"("host":"example.com")"},
      {R"("host": "*.Example.com.")", R"("host":"*.example.com")"},
      {R"("host": "*")", R"("host":"*")"},
      {R"("host": "a-b_c.d1.example")", R"("host":"a-b_c.d1.example")"},
      {R"("address": "203.0.113.7")", R"("address":"203.0.113.7")"},
      {R"("address": "203.0.113.7/32")", R"("address":"203.0.113.7")"},
      {R"("address": "0.0.0.0/0")", R"("address":"0.0.0.0/0")"},
      {R"("address": "::FFFF:10.1.2.3")", R"("address":"10.1.2.3")"},
      {R"("host": "*", "ports": [1, 65535, "1-65535"])", R"("ports":[1,65535,"1-65535"])"},
  };
  for (const auto& c : cases) {
    const std::string doc = one_rule(c.member + R"(, "verdict": "allow")");
    INFO(doc);
    const std::string text = boost::json::serialize(policy_to_json(policy_of(doc)));
    INFO(text);
    CHECK(text.find(c.canonical) != std::string::npos);
  }
}

TEST_CASE("policy json: refusals name the member and say why") {
  struct Case {
    std::string document;
    const char* path;
    const char* message_has;
  };
  const std::string many_rules = [] {
    std::string d = R"({"rules": [)";
    for (std::size_t i = 0; i <= NetworkPolicy::kMaxRules; ++i) d += std::string(i ? "," : "") + R"({"host":"*","verdict":"deny"})";
    return d + "]}";
  }();
  const std::string many_ports = [] {
    std::string d = R"("host": "*", "verdict": "allow", "ports": [)";
    for (std::size_t i = 1; i <= NetworkPolicy::kMaxListItems + 1; ++i) d += (i > 1 ? "," : "") + std::to_string(i);
    return one_rule(d + "]");
  }();
  const Case cases[] = {
      // The document.
      {"[]", "", "must be a JSON object"},
      {"\"rules\"", "", "must be a JSON object"},
      {"null", "", "must be a JSON object"},
      {"{}", "", "\"rules\" is required"},
      {"", "", "not JSON"},
      {"{\"rules\": [", "", "not JSON"},
      {"{\"rules\": []} x", "", "not JSON"},
      {"{'rules': []}", "", "not JSON"},
      {"{\"rules\": [],}", "", "not JSON"},
      {"{\"rules\": [] /* c */}", "", "not JSON"},
      {"\xff\xfe", "", "not JSON"},
      {"{\"rules\": [], \"x\": \"\xc3\"}", "", "not JSON"},
      {std::string(40, '[') + std::string(40, ']'), "", "not JSON"},
      {R"({"rules": [], "egress": "allow-all"})", "egress", "unknown member"},
      {R"({"rules": {}})", "rules", "must be an array, not an object"},
      {R"({"rules": [], "denied_names": "servfail"})", "denied_names", "expected nxdomain or refused"},
      {R"({"rules": [], "denied_names": 3})", "denied_names", "must be a string, not an integer"},
      {R"({"rules": [], "rules": []})", "", "member \"rules\" appears more than once"},
      {one_rule(R"("host": "a.com", "verdict": "deny", "verdict": "allow")"), "rules[0]",
       "member \"verdict\" appears more than once"},
      {R"({"rules": [{"host": "a.com", "verdict": "allow"}, {"host": "b.com", "ports": [1], "verdict": "allow", "ports": [2]}]})",
       "rules[1]", "\"ports\" appears more than once"},
      {many_rules, "rules", "at most 256"},
      // A rule's shape.
      {R"({"rules": ["a.com"]})", "rules[0]", "must be an object, not a string"},
      {one_rule(R"("host": "a.com", "verdict": "allow", "port": 443)"), "rules[0].port", "unknown member"},
      {one_rule(R"("host": "a.com", "address": "1.2.3.4", "verdict": "allow")"), "rules[0]", "not both"},
      {one_rule(R"("verdict": "allow")"), "rules[0]", "needs \"host\" or \"address\""},
      {one_rule(R"("host": "a.com")"), "rules[0]", "\"verdict\" is required"},
      {one_rule(R"("host": "a.com", "verdict": "permit")"), "rules[0].verdict", "expected allow, deny or ask"},
      {one_rule(R"("host": "a.com", "verdict": true)"), "rules[0].verdict", "must be a string, not a boolean"},
      {one_rule(R"("host": "a.com", "verdict": "allow", "name": "")"), "rules[0].name", "must not be empty"},
      {one_rule(R"("host": "a.com", "verdict": "allow", "name": "a\u0001b")"), "rules[0].name", "control characters"},
      {one_rule(R"("host": "a.com", "verdict": "allow", "name": ")" + std::string(129, 'x') + "\""), "rules[0].name",
       "at most 128"},
      // Hosts.
      {one_rule(R"("host": 7, "verdict": "allow")"), "rules[0].host", "must be a string, not an integer"},
      {one_rule(R"("host": "", "verdict": "allow")"), "rules[0].host", "empty"},
      {one_rule(R"("host": ".", "verdict": "allow")"), "rules[0].host", "empty"},
      {one_rule(R"("host": "*.", "verdict": "allow")"), "rules[0].host", "empty"},
      {one_rule(R"("host": "a..com", "verdict": "allow")"), "rules[0].host", "not a valid DNS name"},
      {one_rule(R"("host": "a.com..", "verdict": "allow")"), "rules[0].host", "not a valid DNS name"},
      {one_rule(R"("host": ".a.com", "verdict": "allow")"), "rules[0].host", "not a valid DNS name"},
      {one_rule(R"("host": ")" + std::string(64, 'a') + R"(.com", "verdict": "allow")"), "rules[0].host",
       "not a valid DNS name"},
      {one_rule(R"("host": "a*.com", "verdict": "allow")"), "rules[0].host", "'*' may only be"},
      {one_rule(R"("host": "*.*.com", "verdict": "allow")"), "rules[0].host", "'*' may only be"},
      {one_rule(R"("host": "**", "verdict": "allow")"), "rules[0].host", "'*' may only be"},
      {one_rule(R"("host": "a com", "verdict": "allow")"), "rules[0].host", "not a host name"},
      {one_rule(R"("host": "a/b", "verdict": "allow")"), "rules[0].host", "not a host name"},
      {one_rule(R"("host": "10.0.0.1", "verdict": "allow")"), "rules[0].host", "write it as \"address\""},
      // Addresses.
      {one_rule(R"("address": "10.0.0.1/8", "verdict": "allow")"), "rules[0].address", "host bits set; the range is 10.0.0.0/8"},
      {one_rule(R"("address": "10.0.0.0/33", "verdict": "allow")"), "rules[0].address", "0 to 32"},
      {one_rule(R"("address": "10.0.0.0/", "verdict": "allow")"), "rules[0].address", "0 to 32"},
      {one_rule(R"("address": "10.0.0.0/08", "verdict": "allow")"), "rules[0].address", "0 to 32"},
      {one_rule(R"("address": "10.0.0.0/-1", "verdict": "allow")"), "rules[0].address", "0 to 32"},
      {one_rule(R"("address": "10.0.0", "verdict": "allow")"), "rules[0].address", "not an IPv4 address"},
      {one_rule(R"("address": "010.0.0.1", "verdict": "allow")"), "rules[0].address", "not an IPv4 address"},
      {one_rule(R"("address": "example.com", "verdict": "allow")"), "rules[0].address", "not an IPv4 address"},
      {one_rule(R"("address": "::1", "verdict": "allow")"), "rules[0].address", "IPv4-mapped"},
      {one_rule(R"("address": "2001:db8::/32", "verdict": "allow")"), "rules[0].address", "IPv4-mapped"},
      {one_rule(R"("address": "::ffff:10.0.0.0/8", "verdict": "allow")"), "rules[0].address", "takes no prefix"},
      {one_rule(R"("address": ["1.2.3.4"], "verdict": "allow")"), "rules[0].address", "must be a string, not an array"},
      // Ports.
      {one_rule(R"("host": "*", "verdict": "allow", "ports": [0])"), "rules[0].ports[0]", "port 0 is out of range"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": [443, 65536])"), "rules[0].ports[1]", "port 65536 is out of range"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": [-1])"), "rules[0].ports[0]", "out of range"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": [18446744073709551615])"), "rules[0].ports[0]", "out of range"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": [443.0])"), "rules[0].ports[0]", "not a number"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": [true])"), "rules[0].ports[0]", "not a boolean"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": ["9-3"])"), "rules[0].ports[0]", "first port is above its last"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": ["443"])"), "rules[0].ports[0]", "a single port is written as a number"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": ["0-10"])"), "rules[0].ports[0]", "ports 1 to 65535"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": ["1-65536"])"), "rules[0].ports[0]", "ports 1 to 65535"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": ["1 - 5"])"), "rules[0].ports[0]", "ports 1 to 65535"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": ["1-2-3"])"), "rules[0].ports[0]", "ports 1 to 65535"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": ["01-5"])"), "rules[0].ports[0]", "ports 1 to 65535"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": [])"), "rules[0].ports", "must not be empty"},
      {one_rule(R"("host": "*", "verdict": "allow", "ports": 443)"), "rules[0].ports", "must be an array, not an integer"},
      {many_ports, "rules[0].ports", "at most 64"},
      // Schemes, methods, paths, tls.
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["ftp"])"), "rules[0].schemes[0]", "tcp, udp, http or https"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["HTTPS"])"), "rules[0].schemes[0]", "unknown scheme"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": [])"), "rules[0].schemes", "must not be empty"},
      {one_rule(R"("host": "*", "verdict": "allow", "methods": ["GET"])"), "rules[0].methods", "http and https only"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["tcp"], "methods": ["GET"])"), "rules[0].methods",
       "http and https only"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https", "udp"], "paths": ["/"])"), "rules[0].paths",
       "http and https only"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "methods": ["get"])"), "rules[0].methods[0]",
       "case-sensitive"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "methods": ["GET", "PO ST"])"),
       "rules[0].methods[1]", "not an HTTP method"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "methods": [""])"), "rules[0].methods[0]",
       "not an HTTP method"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "methods": [])"), "rules[0].methods",
       "must not be empty"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "paths": ["v1/"])"), "rules[0].paths[0]",
       "must start with '/'"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "paths": ["/a b"])"), "rules[0].paths[0]",
       "without spaces"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "paths": ["/a?b=1"])"), "rules[0].paths[0]",
       "'?'"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "paths": [1])"), "rules[0].paths[0]",
       "must be a string"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "tls": "passthrough", "paths": ["/"])"),
       "rules[0].tls", "passthrough"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["https"], "tls": "passthrough", "methods": ["GET"])"),
       "rules[0].tls", "passthrough"},
      {one_rule(R"("host": "*", "verdict": "allow", "schemes": ["tcp"], "tls": "passthrough")"), "rules[0].tls",
       "applies to https"},
      {one_rule(R"("host": "*", "verdict": "allow", "tls": "terminate")"), "rules[0].tls", "intercept or passthrough"},
      // The error's path counts rules.
      {R"({"rules": [{"host": "a.com", "verdict": "allow"}, {"host": "b.com", "verdict": "allow"},
                     {"host": "c.com", "verdict": "allow", "ports": [1, 2, 70000]}]})", "rules[2].ports[2]",
       "port 70000 is out of range"},
  };
  for (const auto& c : cases) {
    INFO(c.document.substr(0, 300));
    auto p = parse_policy(as_bytes(c.document));
    REQUIRE_FALSE(p.has_value());
    INFO(p.error().to_string());
    CHECK(p.error().path == c.path);
    CHECK(p.error().message.find(c.message_has) != std::string::npos);
    CHECK(p.error().to_string() == (p.error().path.empty() ? "" : p.error().path + ": ") + p.error().message);
  }
}

TEST_CASE("policy json: a document over the size bound is refused before parsing") {
  std::string huge = R"({"rules": [], "pad": ")";
  huge += std::string(kMaxDocumentBytes, 'x');
  huge += "\"}";
  auto p = parse_policy(as_bytes(huge));
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().path.empty());
  CHECK(p.error().message.find("at most 1048576") != std::string::npos);

  // Just under the bound, whitespace and all, it parses.
  std::string big = R"({"rules": [)" + std::string(kMaxDocumentBytes - 20, ' ') + "]}";
  REQUIRE(big.size() <= kMaxDocumentBytes);
  CHECK(parse_policy(as_bytes(big)).has_value());
}

TEST_CASE("policy json: policy_from_json takes an already parsed value") {
  const auto v = boost::json::parse(R"({"rules": [{"host": "a.com", "verdict": "allow"}]})");
  auto p = policy_from_json(v);
  REQUIRE(p.has_value());
  REQUIRE(p->rules.size() == 1);
  CHECK(p->rules[0].host->name == "a.com");
  auto bad = policy_from_json(boost::json::value(42));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("not an integer") != std::string::npos);
}
