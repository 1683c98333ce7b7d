#include "daemon/api/ws_server.hpp"

#include <sys/stat.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <charconv>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/api/upgrade_check.hpp"

namespace sandboxd::api {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

namespace {

constexpr std::chrono::seconds kRequestDeadline{30};

// One accepted socket until its HTTP request is judged: answered and closed,
// or handed to a WsConnection.
struct HttpGate : std::enable_shared_from_this<HttpGate> {
  HttpGate(WsConnection::Socket s, asio::io_context& io) : socket(std::move(s)), timer(io) {}
  WsConnection::Socket socket;
  asio::steady_timer timer;
  beast::flat_buffer buffer;
  http::request_parser<http::string_body> parser;
  http::response<http::string_body> response;
};

}  // namespace

WsServer::WsServer(asio::io_context& io, session::SandboxService& service, ServerSettings settings)
    : io_(io), service_(service), settings_(std::move(settings)) {}

WsServer::~WsServer() {
  *alive_ = false;
  if (!unix_path_.empty()) {
    std::error_code ignored;
    std::filesystem::remove(unix_path_, ignored);
  }
}

Expected<tcp::endpoint, std::string> WsServer::listen_tcp(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return Unexpected{"listen address '" + address + "' is not host:port"};
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto port_text = address.substr(colon + 1);
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
    return Unexpected{"listen address '" + address + "' has a bad port"};
  boost::system::error_code error;
  auto ip = asio::ip::make_address(host, error);
  if (error) return Unexpected{"listen address '" + address + "': " + error.message()};
  tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  tcp_.emplace(io_);
  tcp_->open(endpoint.protocol(), error);
  if (!error) tcp_->set_option(asio::socket_base::reuse_address(true), error);
  if (!error) tcp_->bind(endpoint, error);
  if (!error) tcp_->listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    tcp_.reset();
    return Unexpected{"cannot listen on " + address + ": " + error.message()};
  }
  accept_tcp();
  return tcp_->local_endpoint();
}

Expected<void, std::string> WsServer::listen_unix(const std::filesystem::path& path) {
  boost::system::error_code error;
  if (std::filesystem::exists(path)) {
    // A socket left by a daemon that was killed: nobody answers on it.
    local::socket probe(io_);
    probe.connect(local::endpoint(path.string()), error);
    if (!error) return Unexpected{"another daemon is serving on " + path.string()};
    std::filesystem::remove(path);
  }
  std::filesystem::create_directories(path.parent_path());
  unix_.emplace(io_);
  unix_->open(local(), error);
  mode_t old = ::umask(0077);  // the socket is for its owner only
  if (!error) unix_->bind(local::endpoint(path.string()), error);
  ::umask(old);
  if (!error) unix_->listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    unix_.reset();
    return Unexpected{"cannot listen on " + path.string() + ": " + error.message()};
  }
  unix_path_ = path;
  accept_unix();
  return {};
}

void WsServer::accept_tcp() {
  tcp_->async_accept([this, alive = alive_](const boost::system::error_code& ec, tcp::socket socket) {
    if (!*alive || !tcp_) return;
    if (!ec) {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto protocol = socket.local_endpoint(ignored).protocol();
      int fd = socket.release(ignored);
      serve(WsConnection::Socket(io_, asio::generic::stream_protocol(protocol.family(), protocol.protocol()), fd));
    } else if (ec == asio::error::operation_aborted) {
      return;
    }
    accept_tcp();
  });
}

void WsServer::accept_unix() {
  unix_->async_accept([this, alive = alive_](const boost::system::error_code& ec, local::socket socket) {
    if (!*alive || !unix_) return;
    if (!ec) {
      boost::system::error_code ignored;
      int fd = socket.release(ignored);
      serve(WsConnection::Socket(io_, asio::generic::stream_protocol(AF_UNIX, 0), fd));
    } else if (ec == asio::error::operation_aborted) {
      return;
    }
    accept_unix();
  });
}

void WsServer::serve(WsConnection::Socket socket) {
  auto gate = std::make_shared<HttpGate>(std::move(socket), io_);
  gate->parser.header_limit(16 * 1024);
  gate->parser.body_limit(16 * 1024);
  // A client that never finishes its request does not hold a socket forever.
  gate->timer.expires_after(kRequestDeadline);
  gate->timer.async_wait([gate](const boost::system::error_code& ec) {
    if (ec) return;
    boost::system::error_code ignored;
    gate->socket.close(ignored);
  });
  http::async_read(gate->socket, gate->buffer, gate->parser,
                   [this, alive = alive_, gate](const boost::system::error_code& ec, std::size_t) {
    gate->timer.cancel();
    if (ec || !*alive) return;
    auto& req = gate->parser.get();
    UpgradeRequest check;
    check.method = req.method_string();
    check.target = req.target();
    if (auto it = req.find(http::field::authorization); it != req.end()) check.authorization = it->value();
    if (auto it = req.find(http::field::origin); it != req.end()) check.origin = it->value();
    check.is_websocket_upgrade = beast::websocket::is_upgrade(req);
    auto decision = decide_upgrade(check, settings_.tokens, settings_.allowed_origins);
    if (decision.action == UpgradeDecision::Action::kUpgrade) {
      std::string id = "c-" + std::to_string(next_connection_++);
      auto connection = std::make_shared<WsConnection>(std::move(gate->socket), id, settings_.connection.max_frame_bytes,
                                                       settings_.hello.server_name);
      auto client = std::make_shared<ClientSession>(std::move(connection), decision.owner, service_,
                                                    settings_.connection, settings_.hello);
      clients_[client.get()] = client;
      client->start(gate->parser.release(), [this, alive = alive_](ClientSession* closed) {
        if (!*alive) return;
        clients_.erase(closed);
        if (clients_.empty() && all_closed_) std::exchange(all_closed_, nullptr)();
      });
      return;
    }
    auto& res = gate->response;
    res.version(req.version());
    res.set(http::field::server, settings_.hello.server_name);
    res.set(http::field::content_type, "application/json");
    res.keep_alive(false);
    if (decision.action == UpgradeDecision::Action::kHealth) {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain");
      res.body() = "ok\n";
    } else {
      res.result(static_cast<http::status>(decision.status));
      if (decision.status == 401) res.set(http::field::www_authenticate, "Bearer");
      res.body() = "{\"code\":\"" + decision.reason + "\"}\n";
      spdlog::info("refused an upgrade request: HTTP {} {}", decision.status, decision.reason);
    }
    res.prepare_payload();
    http::async_write(gate->socket, res, [gate](const boost::system::error_code&, std::size_t) {
      boost::system::error_code ignored;
      gate->socket.shutdown(WsConnection::Socket::shutdown_both, ignored);
      gate->socket.close(ignored);
    });
  });
}

void WsServer::stop_accepting() {
  boost::system::error_code ignored;
  if (tcp_) tcp_->close(ignored);
  if (unix_) unix_->close(ignored);
  tcp_.reset();
  unix_.reset();
  if (!unix_path_.empty()) {
    std::error_code ignored2;
    std::filesystem::remove(unix_path_, ignored2);
    unix_path_.clear();
  }
}

void WsServer::close_all(std::function<void()> done) {
  if (clients_.empty()) return done();
  all_closed_ = std::move(done);
  auto clients = clients_;
  for (auto& [key, c] : clients) c->close_for_shutdown();
}

}  // namespace sandboxd::api
