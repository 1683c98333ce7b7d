// One WebSocket connection to the daemon's control plane (WS_PROTOCOL.md),
// over TCP or its unix socket, driven by one io_context.
//
// Requests get an id from a counter and their answer is handed to the
// callback given with them, in whatever order answers arrive; events,
// output frames and errors without an id go to the handlers given at
// creation. Frames are written one at a time from a queue, text and binary
// in the order they were queued.
//
// Beast stays inside the .cpp: it is the heaviest header set in the client
// and only this file needs it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <string>

#include "clients/sandboxctl/ws_url.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"
#include "protocol/ws/binary_frame.hpp"

namespace sandboxd::ctl {

struct ConnectError {
  enum class Kind {
    kNetwork,       // no connection (refused, unreachable, timed out)
    kUnauthorized,  // HTTP 401: a missing or wrong token
    kHttp,          // another HTTP answer instead of the upgrade
    kProtocol,      // the peer does not speak HTTP/WebSocket
  };
  Kind kind = Kind::kNetwork;
  int http_status = 0;
  std::string message;
};

struct RequestError {
  // The connection ended before the answer came; `code` is empty then.
  bool connection_lost = false;
  std::string code;
  std::string message;
  boost::json::object error;  // the whole error frame
};

class ControlConnection {
 public:
  struct Handlers {
    std::function<void(const boost::json::object& event)> on_event;
    std::function<void(const protocol::ws::BinaryFrameView& frame)> on_output;
    // Errors with "id": null: answers to binary frames, or to a frame that
    // could not be read.
    std::function<void(const boost::json::object& error)> on_stray_error;
    // The connection ended without close() being called.
    std::function<void(const std::string& why)> on_lost;
  };
  using ConnectHandler = std::function<void(Expected<void, ConnectError>)>;
  using ResponseHandler = std::function<void(Expected<boost::json::object, RequestError>)>;

  static std::shared_ptr<ControlConnection> create(boost::asio::io_context& io, Handlers handlers);
  virtual ~ControlConnection() = default;

  // TCP connect and WebSocket upgrade with "Authorization: Bearer <token>"
  // (none when `token` is empty), bounded by a timeout.
  virtual void connect(const WsUrl& url, const std::string& token, ConnectHandler done) = 0;
  // Sends `request` (with "op" and its members) after giving it an "id";
  // `done` gets the response's "result" or the error.
  virtual void request(boost::json::object request, ResponseHandler done) = 0;
  // Queues one binary frame; `done(true)` once it was handed to the socket,
  // `done(false)` when the connection ended first.
  virtual void send_binary(Bytes frame, std::function<void(bool written)> done) = 0;
  // Closes with 1000 after the queued frames. No handler or callback is
  // called after this; pending requests are dropped.
  virtual void close() = 0;
  virtual bool open() const = 0;
  // The daemon's hello, empty until it came.
  virtual const boost::json::object& hello() const = 0;
};

}  // namespace sandboxd::ctl
