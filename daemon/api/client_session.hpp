// One client's side of the control plane, above its WebSocket transport:
// who it is (the token's owner), which execs it is attached to and which
// sandboxes it watches, how many of its requests are in flight, and the
// translation of every text frame into an operation (operations.hpp) and of
// every binary frame into stdin.
//
// It is the sink the sandbox service delivers to (session/exec_sink.hpp):
// exec log entries go to the transport at its pace; sandbox events once per
// connection — an exec's own events reach a connection attached to it only
// through the attachment, never a second time through a subscription.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "daemon/api/api_error.hpp"
#include "daemon/api/connection_config.hpp"
#include "daemon/api/file_transfers.hpp"
#include "daemon/api/ws_connection.hpp"
#include "daemon/session/exec_sink.hpp"
#include "daemon/session/sandbox_service.hpp"

namespace sandboxd::api {

class ClientSession : public std::enable_shared_from_this<ClientSession>,
                      public WsConnection::Handler,
                      public session::ExecSink,
                      public session::SandboxSink {
 public:
  // What every connection is told in its hello.
  struct Hello {
    std::string server_name;
    boost::json::object limits;
  };

  ClientSession(std::shared_ptr<WsConnection> connection, std::string owner, session::SandboxService& service,
                const ConnectionConfig& config, const Hello& hello);

  // `on_closed` runs once the connection is over.
  void start(WsConnection::UpgradeRequest request, std::function<void(ClientSession*)> on_closed);
  // The daemon is stopping: close with 1001 once what is queued is sent.
  void close_for_shutdown();

  // For the operations.
  const std::string& owner() const { return owner_; }
  session::SandboxService& service() { return service_; }
  void respond(const boost::json::value& id, boost::json::object result);
  void fail(const boost::json::value& id, const ApiError& error);
  void fail(const boost::json::value& id, const session::Error& error) { fail(id, ApiError::from_domain(error)); }
  // Requests whose answer waits for the service (create, destroy) count
  // against max_pending_requests while they wait.
  FileTransfers& transfers() { return transfers_; }
  WsConnection& connection() { return *connection_; }
  void begin_pending() { ++pending_; }
  void end_pending() { --pending_; }
  void attached(const std::shared_ptr<session::Exec>& exec) { attached_[exec->id()] = exec; }
  // Runs `start`, which starts an exec this connection then attaches to;
  // sandbox events that `start` itself causes for that exec are left to the
  // attachment's replay.
  Expected<session::SandboxService::Started, session::Error> starting_exec(
      const std::function<Expected<session::SandboxService::Started, session::Error>()>& start);
  void detached(const std::string& exec_id);
  void subscribed(const std::shared_ptr<session::Sandbox>& sandbox);
  void unsubscribed(const std::string& sandbox_id);

  // WsConnection::Handler
  void on_open() override;
  void on_text(std::string_view text) override;
  void on_binary(ByteSpan data) override;
  void on_room() override;
  void on_closed() override;

  // session::ExecSink
  bool can_send() const override { return connection_->can_send(); }
  void send_entry(session::SharedEntry entry) override { connection_->send_entry(std::move(entry)); }
  void stdin_room() override;
  // session::SandboxSink
  void send_sandbox_state(const session::SandboxStateEvent& event) override;
  void send_exec_event(const std::string& exec_id, session::SharedEntry entry) override;
  void send_net_flow(const session::NetFlowEvent& event) override;

 private:
  bool stdin_blocked() const;
  void send_text(std::string text);

  std::shared_ptr<WsConnection> connection_;
  std::string owner_;
  session::SandboxService& service_;
  ConnectionConfig config_;
  const Hello& hello_;
  unsigned pending_ = 0;
  std::map<std::string, std::weak_ptr<session::Exec>> attached_;
  std::map<std::string, std::weak_ptr<session::Sandbox>> subscribed_;
  std::function<void(ClientSession*)> on_closed_;
  bool starting_exec_ = false;
  std::vector<std::pair<std::string, session::SharedEntry>> held_events_;
  FileTransfers transfers_;
};

}  // namespace sandboxd::api
