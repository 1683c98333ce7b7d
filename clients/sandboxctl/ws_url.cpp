#include "clients/sandboxctl/ws_url.hpp"

#include <charconv>

namespace sandboxd::ctl {

namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

Expected<std::uint16_t, std::string> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
    return Unexpected{"bad port '" + std::string(text) + "'"};
  return static_cast<std::uint16_t>(value);
}

Expected<WsUrl, std::string> parse_unix(std::string_view rest) {
  // unix:///path is the same socket as unix:/path.
  if (rest.starts_with("//")) rest.remove_prefix(2);
  if (rest.empty()) return Unexpected{std::string("unix: needs the socket's path, as in unix:/run/sandboxd/api.sock")};
  WsUrl url;
  url.transport = WsUrl::Transport::kUnix;
  url.socket_path = std::string(rest);
  url.target = std::string(kApiPath);
  url.host_header = "localhost";
  return url;
}

Expected<WsUrl, std::string> parse_tcp(std::string_view rest) {
  auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (auto fragment = target.find('#'); fragment != std::string_view::npos) target = target.substr(0, fragment);
  if (authority.find('@') != std::string_view::npos)
    return Unexpected{std::string("user names in the URL are not supported; give the token with --token")};

  WsUrl url;
  std::string_view port_text;
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return Unexpected{std::string("unterminated [ in the URL's host")};
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Unexpected{std::string("unexpected text after ] in the URL's host")};
      port_text = after.substr(1);
      if (port_text.empty()) return Unexpected{std::string("empty port in the URL")};
    }
  } else {
    auto colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Unexpected{std::string("empty port in the URL")};
    }
  }
  if (url.host.empty()) return Unexpected{std::string("the URL has no host")};
  url.port = 80;
  if (!port_text.empty()) {
    auto port = parse_port(port_text);
    if (!port) return Unexpected{port.error()};
    url.port = *port;
  }
  // An empty path means the API's own, so "ws://host:7070" is enough.
  if (target.empty() || target.front() == '?') {
    url.target = std::string(kApiPath) + std::string(target);
  } else {
    url.target = std::string(target);
  }
  bool v6 = url.host.find(':') != std::string::npos;
  url.host_header = v6 ? "[" + url.host + "]" : url.host;
  if (url.port != 80) url.host_header += ":" + std::to_string(url.port);
  return url;
}

}  // namespace

std::string WsUrl::display() const {
  if (transport == Transport::kUnix) return "unix:" + socket_path;
  return "ws://" + host_header + target;
}

Expected<WsUrl, std::string> parse_ws_url(std::string_view text) {
  if (starts_with_ci(text, "unix:")) return parse_unix(text.substr(5));
  if (starts_with_ci(text, "ws://")) return parse_tcp(text.substr(5));
  if (starts_with_ci(text, "wss://"))
    return Unexpected{std::string("wss:// is not supported: the daemon serves plain WebSocket on loopback and unix sockets")};
  return Unexpected{"'" + std::string(text) + "' is not a ws:// or unix: URL"};
}

}  // namespace sandboxd::ctl
