// One client's WebSocket: reads requests and stdin frames, answers them
// through the sandbox service, and sends exec logs and sandbox events.
//
// One read and one write are in flight at most (Beast's rule); everything to
// send waits in a queue. Exec output is pulled by pace: an exec hands this
// connection entries only while less than kSendWindow bytes are queued, so a
// slow client holds its execs' logs (and, once full, the processes) back
// rather than growing the daemon. Responses and events are always queued; a
// client that stops reading altogether is closed at kMaxQueued.
#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/object.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "daemon/api/api_error.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/session/exec_sink.hpp"
#include "daemon/session/sandbox_service.hpp"

namespace sandboxd::api {

struct ConnectionSettings {
  std::size_t max_frame_bytes = 1u << 20;
  unsigned max_pending_requests = 64;
  std::string server_name;
  boost::json::object limits;  // reported in the hello
};

class WsConnection : public std::enable_shared_from_this<WsConnection>,
                     public session::ExecSink,
                     public session::SandboxSink {
 public:
  using Socket = boost::asio::generic::stream_protocol::socket;
  using Stream = boost::beast::websocket::stream<Socket>;
  using UpgradeRequest = boost::beast::http::request<boost::beast::http::string_body>;
  static constexpr std::size_t kSendWindow = 1u << 20;
  static constexpr std::size_t kMaxQueued = 64u << 20;

  WsConnection(Socket socket, std::string owner, std::string id, session::SandboxService& service,
               const ConnectionSettings& settings);
  ~WsConnection() override;

  // `on_closed` runs once the connection is over; the server keeps the
  // connection alive until then (a connection paused on stdin has no
  // operation in flight that would hold it).
  void start(UpgradeRequest request, std::function<void(WsConnection*)> on_closed);
  // The daemon is stopping: close with 1001 once what is queued is sent.
  void close_for_shutdown();
  bool closed() const { return closed_; }

  bool can_send() const override { return !closed_ && queued_bytes_ < kSendWindow; }
  void send_entry(session::SharedEntry entry) override;
  void stdin_room() override;
  void send_sandbox_event(std::shared_ptr<const std::string> event) override;

 private:
  struct Outgoing {
    bool binary = false;
    std::shared_ptr<const std::string> text;
    session::SharedEntry entry;  // keeps a log entry alive while it is written
    const std::string& bytes() const { return entry ? entry->message : *text; }
  };

  void read_next();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void handle_text(std::string_view text);
  void handle_binary(ByteSpan data);
  void dispatch(Envelope& request);
  bool stdin_blocked() const;

  void respond(const boost::json::value& id, boost::json::object result);
  void fail(const boost::json::value& id, const ApiError& error);
  void send_text(std::shared_ptr<const std::string> text);
  void enqueue(Outgoing out);
  void write_next();
  void shut(boost::beast::websocket::close_code code, std::string reason);
  void cleanup();

  // Operations.
  void op_hello(const boost::json::value& id, const boost::json::object& m);
  void op_sandbox_create(const boost::json::value& id, const boost::json::object& m);
  void op_sandbox_list(const boost::json::value& id, const boost::json::object& m);
  void op_sandbox_get(const boost::json::value& id, const boost::json::object& m);
  void op_sandbox_destroy(const boost::json::value& id, const boost::json::object& m);
  void op_sandbox_subscribe(const boost::json::value& id, const boost::json::object& m, bool subscribe);
  void op_exec_start(const boost::json::value& id, const boost::json::object& m);
  void op_exec_attach(const boost::json::value& id, const boost::json::object& m);
  void op_exec_detach(const boost::json::value& id, const boost::json::object& m);
  void op_exec_get(const boost::json::value& id, const boost::json::object& m);
  void op_exec_list(const boost::json::value& id, const boost::json::object& m);
  void op_exec_control(const boost::json::value& id, const boost::json::object& m, const std::string& op);

  Stream ws_;
  std::string owner_;
  std::string id_;
  session::SandboxService& service_;
  ConnectionSettings settings_;
  boost::beast::flat_buffer read_buffer_;
  std::deque<Outgoing> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool closed_ = false;
  bool closing_ = false;
  std::optional<boost::beast::websocket::close_reason> close_after_writes_;
  unsigned pending_ = 0;
  std::map<std::string, std::weak_ptr<session::Exec>> attached_;
  std::map<std::string, std::weak_ptr<session::Sandbox>> subscribed_;
  std::function<void(WsConnection*)> on_closed_;
};

}  // namespace sandboxd::api
