#include <catch2/catch.hpp>

#include "clients/sandboxctl/ws_url.hpp"

using namespace sandboxd::ctl;

TEST_CASE("the default URL is TCP on loopback at /v1") {
  auto url = parse_ws_url(kDefaultUrl);
  REQUIRE(url);
  CHECK(url->transport == WsUrl::Transport::kTcp);
  CHECK(url->host == "127.0.0.1");
  CHECK(url->port == 7070);
  CHECK(url->target == "/v1");
  CHECK(url->host_header == "127.0.0.1:7070");
  CHECK(url->display() == "ws://127.0.0.1:7070/v1");
}

TEST_CASE("ws URLs: ports, paths, queries, IPv6, names") {
  SECTION("no port is 80 and no path is /v1") {
    auto url = parse_ws_url("ws://sandbox.example");
    REQUIRE(url);
    CHECK(url->port == 80);
    CHECK(url->target == "/v1");
    CHECK(url->host_header == "sandbox.example");
  }
  SECTION("a query alone keeps /v1") {
    auto url = parse_ws_url("ws://localhost:7070?access_token=abc");
    REQUIRE(url);
    CHECK(url->target == "/v1?access_token=abc");
  }
  SECTION("a path is kept, fragments dropped") {
    auto url = parse_ws_url("ws://h:1/v1#x");
    REQUIRE(url);
    CHECK(url->target == "/v1");
  }
  SECTION("IPv6 in brackets") {
    auto url = parse_ws_url("ws://[::1]:7070/v1");
    REQUIRE(url);
    CHECK(url->host == "::1");
    CHECK(url->port == 7070);
    CHECK(url->host_header == "[::1]:7070");
  }
  SECTION("the scheme in any case") {
    auto url = parse_ws_url("WS://h:9/v1");
    REQUIRE(url);
    CHECK(url->port == 9);
  }
}

TEST_CASE("unix socket URLs upgrade on /v1") {
  for (const char* text : {"unix:/run/sandboxd/api.sock", "unix:///run/sandboxd/api.sock"}) {
    auto url = parse_ws_url(text);
    REQUIRE(url);
    CHECK(url->transport == WsUrl::Transport::kUnix);
    CHECK(url->socket_path == "/run/sandboxd/api.sock");
    CHECK(url->target == "/v1");
    CHECK(url->host_header == "localhost");
    CHECK(url->display() == "unix:/run/sandboxd/api.sock");
  }
  auto relative = parse_ws_url("unix:api.sock");
  REQUIRE(relative);
  CHECK(relative->socket_path == "api.sock");
}

TEST_CASE("bad URLs are refused with a reason") {
  for (const char* text : {"", "http://h/v1", "wss://h/v1", "ws://", "ws://:7070/v1", "ws://h:0/v1", "ws://h:65536",
                           "ws://h:x/v1", "ws://h:/v1", "ws://[::1/v1", "ws://[::1]x/v1", "ws://u@h/v1", "unix:",
                           "unix://"}) {
    INFO(text);
    auto url = parse_ws_url(text);
    CHECK_FALSE(url);
    if (!url) CHECK_FALSE(url.error().empty());
  }
}
