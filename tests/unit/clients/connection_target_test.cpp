#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include "clients/sandboxctl/connection_target.hpp"

using namespace sandboxd::ctl;

namespace {

Target target_with_token(std::string token, std::string source) {
  Target target;
  target.url = *parse_ws_url("ws://127.0.0.1:7070/v1");
  target.token = std::move(token);
  target.token_source = std::move(source);
  return target;
}

}  // namespace

TEST_CASE("a refused token is reported the same way whatever the transport") {
  ConnectError refused{ConnectError::Kind::kUnauthorized, 401, "HTTP 401 Unauthorized"};
  auto text = connect_failure_text(refused, target_with_token("abc", "SANDBOXD_TOKEN"));
  CHECK(text.rfind("sandboxctl: the daemon refused the token (HTTP 401)\n", 0) == 0);
  CHECK(text.find("SANDBOXD_TOKEN") != std::string::npos);

  // Without a token the hint says where one can come from.
  text = connect_failure_text(refused, target_with_token("", ""));
  CHECK(text.rfind("sandboxctl: the daemon refused the token (HTTP 401)\n", 0) == 0);
  CHECK(text.find("--token") != std::string::npos);
}

TEST_CASE("other connection failures name the URL") {
  auto target = target_with_token("abc", "--token");
  CHECK(connect_failure_text({ConnectError::Kind::kNetwork, 0, "Connection refused"}, target) ==
        "sandboxctl: cannot connect to ws://127.0.0.1:7070/v1: Connection refused\n");
  CHECK(connect_failure_text({ConnectError::Kind::kHttp, 404, "HTTP 404 Not Found"}, target) ==
        "sandboxctl: ws://127.0.0.1:7070/v1 answered HTTP 404 Not Found instead of upgrading to a WebSocket\n");
}

TEST_CASE("error answers: a line for people, or the error object with --json") {
  auto frame = boost::json::parse(R"({"type":"error","id":3,"code":"not_found","message":"no sandbox sb-1"})");
  RequestError error{false, "not_found", "no sandbox sb-1", frame.as_object()};
  auto target = target_with_token("abc", "--token");
  CHECK(request_failure_text(error, target) == "sandboxctl: no sandbox sb-1 (not_found)\n");
  CHECK(request_failure_text(error, target, "sb-1") == "sandboxctl: sb-1: no sandbox sb-1 (not_found)\n");
  target.json = true;
  CHECK(boost::json::parse(request_failure_text(error, target)) == frame);
}
