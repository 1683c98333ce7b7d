#include <catch2/catch.hpp>

#include "daemon/api/upgrade_check.hpp"

using namespace sandboxd::api;
using Action = UpgradeDecision::Action;

namespace {
const std::vector<std::string> kTokens{"first-token-0123456789", "second-token-0123456789"};
const std::vector<std::string> kOrigins{"https://ui.example.com"};

UpgradeRequest upgrade(std::string_view target = "/v1") {
  UpgradeRequest r;
  r.method = "GET";
  r.target = target;
  r.is_websocket_upgrade = true;
  return r;
}
}  // namespace

TEST_CASE("upgrade: a bearer token lets a client in, as its own owner") {
  auto r = upgrade();
  r.authorization = "Bearer first-token-0123456789";
  auto d = decide_upgrade(r, kTokens, kOrigins);
  CHECK(d.action == Action::kUpgrade);
  CHECK(d.owner == owner_of_token("first-token-0123456789"));
  r.authorization = "bearer   second-token-0123456789";
  auto second = decide_upgrade(r, kTokens, kOrigins);
  CHECK(second.action == Action::kUpgrade);
  CHECK(second.owner != d.owner);
  CHECK(d.owner.find("first-token") == std::string::npos);  // the owner never reveals the token
}

TEST_CASE("upgrade: missing or wrong tokens get 401") {
  auto r = upgrade();
  CHECK(decide_upgrade(r, kTokens, kOrigins).status == 401);
  r.authorization = "Bearer first-token-012345678";  // one character short
  CHECK(decide_upgrade(r, kTokens, kOrigins).status == 401);
  r.authorization = "Basic Zmlyc3QtdG9rZW4=";
  CHECK(decide_upgrade(r, kTokens, kOrigins).status == 401);
  CHECK(decide_upgrade(r, {}, kOrigins).status == 401);
}

TEST_CASE("upgrade: the token may come in the query, for browsers") {
  auto r = upgrade("/v1?access_token=second-token-0123456789");
  CHECK(decide_upgrade(r, kTokens, kOrigins).action == Action::kUpgrade);
  CHECK(decide_upgrade(upgrade("/v1?access_token=second%2Dtoken-0123456789"), kTokens, kOrigins).action ==
        Action::kUpgrade);
  CHECK(decide_upgrade(upgrade("/v1?access_token=%zz"), kTokens, kOrigins).status == 401);
  CHECK(query_parameter("/v1?a=1&b=x%20y", "b") == "x y");
  CHECK_FALSE(query_parameter("/v1?a=1", "b"));
  CHECK_FALSE(query_parameter("/v1?b=%4", "b"));
}

TEST_CASE("upgrade: origins, paths, methods and plain requests") {
  auto r = upgrade();
  r.authorization = "Bearer first-token-0123456789";
  r.origin = "https://evil.example.com";
  CHECK(decide_upgrade(r, kTokens, kOrigins).status == 403);
  r.origin = "https://ui.example.com";
  CHECK(decide_upgrade(r, kTokens, kOrigins).action == Action::kUpgrade);
  r.origin.reset();
  r.target = "/v2";
  CHECK(decide_upgrade(r, kTokens, kOrigins).status == 404);
  r.target = "/v1/health";
  r.is_websocket_upgrade = false;
  CHECK(decide_upgrade(r, kTokens, kOrigins).action == Action::kHealth);
  r.target = "/v1";
  CHECK(decide_upgrade(r, kTokens, kOrigins).status == 426);
  r.method = "POST";
  CHECK(decide_upgrade(r, kTokens, kOrigins).status == 405);
}
