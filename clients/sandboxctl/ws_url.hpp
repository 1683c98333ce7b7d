// Where the daemon's control plane is: a ws:// URL for TCP, or unix:<path> for
// its unix socket, where the upgrade goes to /v1 like on TCP.
//
// Pure parsing, so every spelling a user may type is checked in unit tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/expected.hpp"

namespace sandboxd::ctl {

inline constexpr std::string_view kDefaultUrl = "ws://127.0.0.1:7070/v1";
inline constexpr std::string_view kApiPath = "/v1";

struct WsUrl {
  enum class Transport { kTcp, kUnix };
  Transport transport = Transport::kTcp;
  std::string host;         // tcp: name or address, IPv6 without brackets
  std::uint16_t port = 0;   // tcp
  std::string socket_path;  // unix
  std::string target;       // path and query of the upgrade request
  std::string host_header;  // the Host header: host[:port], "localhost" for unix

  // For messages: the URL as the user would write it.
  std::string display() const;
};

// Accepts "ws://host[:port][/path][?query]" (port 80 when absent, host an
// IPv4 address, a name or a bracketed IPv6 address; an empty path means
// /v1) and "unix:/path/to/socket" (also "unix:///path"). wss:// is refused:
// the daemon listens on loopback and unix sockets only and serves no TLS.
Expected<WsUrl, std::string> parse_ws_url(std::string_view text);

}  // namespace sandboxd::ctl
