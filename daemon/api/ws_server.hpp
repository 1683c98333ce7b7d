// The control plane's listeners: TCP and a unix socket, each connection
// first an HTTP request that must pass the upgrade checks (upgrade_check.hpp)
// within a deadline, then a WebSocket (ws_connection.hpp) serving a
// ClientSession (client_session.hpp).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/api/client_session.hpp"
#include "daemon/api/connection_config.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::api {

struct ServerSettings {
  std::vector<std::string> tokens;
  std::vector<std::string> allowed_origins;
  ConnectionConfig connection;
  ClientSession::Hello hello;
};

class WsServer {
 public:
  WsServer(boost::asio::io_context& io, session::SandboxService& service, ServerSettings settings);
  ~WsServer();

  // "host:port" ("[::1]:7070" for IPv6); port 0 picks one. Returns the bound endpoint.
  Expected<boost::asio::ip::tcp::endpoint, std::string> listen_tcp(const std::string& address);
  // Replaces a stale socket file; refuses when a live daemon answers on it.
  Expected<void, std::string> listen_unix(const std::filesystem::path& path);

  // Stops accepting; open connections go on (to carry the last events).
  void stop_accepting();
  // Closes every connection with 1001 once what is queued to it is sent;
  // `done` runs when the last one has closed.
  void close_all(std::function<void()> done);
  std::size_t connection_count() const { return clients_.size(); }

 private:
  void accept_tcp();
  void accept_unix();
  void serve(WsConnection::Socket socket);

  boost::asio::io_context& io_;
  session::SandboxService& service_;
  ServerSettings settings_;
  std::optional<boost::asio::ip::tcp::acceptor> tcp_;
  std::optional<boost::asio::local::stream_protocol::acceptor> unix_;
  std::filesystem::path unix_path_;
  std::map<ClientSession*, std::shared_ptr<ClientSession>> clients_;
  std::function<void()> all_closed_;
  std::uint64_t next_connection_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sandboxd::api
