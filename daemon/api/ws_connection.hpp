// One client's WebSocket as a transport: reads messages and hands them to
// the layer above (a ClientSession), queues what that layer sends, paces
// exec output, and closes — never more than one read and one write in
// flight (Beast's rule).
//
// Bounds, so that no client can grow the daemon:
//   - exec output is pulled by pace: entries are taken only while less than
//     kSendWindow bytes are queued (can_send), so a slow client holds its
//     execs' logs (and, once full, the processes) back;
//   - responses and events are always queued, but a client that lets more
//     than kMaxQueuedText bytes of them pile up is not reading: the
//     connection is closed with 1008;
//   - a write that has not completed after kWriteDeadline means the same,
//     as does kIdleTimeout without a byte from the client (Beast pings it
//     after half of that, and any live client answers);
//   - the socket's own send buffer is held to kSocketSendBuffer (the kernel
//     would grow it to 4 MiB), so that what a client leaves unread shows in
//     the queue above instead of vanishing into the kernel.
//
// Closing: once a close is decided nothing more is handed up or queued;
// what the client still sends is read and thrown away (so a client busy
// writing is not stalled), the message being written finishes, then the
// close frame goes out, and the socket is drained before it is closed
// (ws_socket.hpp), so the client hears the close code instead of a reset.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "daemon/api/ws_socket.hpp"
#include "daemon/session/exec_log.hpp"
#include "protocol/bytes.hpp"

namespace sandboxd::api {

class WsConnection : public std::enable_shared_from_this<WsConnection> {
 public:
  using Socket = WsSocket::next_layer_type;
  using Stream = boost::beast::websocket::stream<WsSocket>;
  using UpgradeRequest = boost::beast::http::request<boost::beast::http::string_body>;
  using CloseCode = boost::beast::websocket::close_code;

  static constexpr std::size_t kSendWindow = 1u << 20;
  static constexpr std::size_t kMaxQueuedText = 1u << 20;
  static constexpr int kSocketSendBuffer = 1 << 20;
  static constexpr std::chrono::seconds kWriteDeadline{60};
  static constexpr std::chrono::seconds kIdleTimeout{300};
  static constexpr std::chrono::seconds kHandshakeTimeout{30};

  // The layer above. Its calls come from the connection's handlers; it may
  // send and close from inside them.
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_open() = 0;
    virtual void on_text(std::string_view text) = 0;
    virtual void on_binary(ByteSpan data) = 0;
    // The send window has room again.
    virtual void on_room() = 0;
    // Once, when the connection is over (also after a failed handshake).
    virtual void on_closed() = 0;
  };

  WsConnection(Socket socket, std::string id, std::size_t max_message_bytes, std::string server_name);
  ~WsConnection();

  void start(UpgradeRequest request, std::weak_ptr<Handler> handler);

  void send_text(std::shared_ptr<const std::string> text);
  void send_entry(session::SharedEntry entry);
  // A binary message that is no log entry (file data): paced like exec
  // output, so the sender checks can_send() first.
  void send_binary(std::shared_ptr<const std::string> data);
  bool can_send() const { return !closing_ && queued_bytes_ < kSendWindow; }

  // While paused no message is read (the client's own writes then wait in
  // TCP); a decided close reads on regardless, to drain.
  void pause_reading() { read_paused_ = true; }
  void resume_reading();
  bool reading_paused() const { return read_paused_; }

  void close(CloseCode code, std::string reason);
  bool closing() const { return closing_; }
  const std::string& id() const { return id_; }
  std::size_t queued_bytes() const { return queued_bytes_; }

 private:
  struct Outgoing {
    bool binary = false;
    std::shared_ptr<const std::string> text;
    session::SharedEntry entry;  // keeps a log entry alive while it is written
    const std::string& bytes() const { return entry ? entry->message : *text; }
    // Responses and events: what a client that does not read piles up.
    bool is_text() const { return !entry && !binary; }
  };

  void read_next();
  void on_read(const boost::system::error_code& ec);
  void enqueue(Outgoing out);
  void write_next();
  void on_written(const boost::system::error_code& ec);
  void drop_unsent();
  void arm_write_deadline();
  void finish();
  std::shared_ptr<Handler> handler() const { return handler_.lock(); }

  Stream ws_;
  std::string id_;
  std::size_t max_message_bytes_;
  std::string server_name_;
  std::weak_ptr<Handler> handler_;
  boost::beast::flat_buffer read_buffer_;
  std::deque<Outgoing> queue_;  // the front is being written while writing_
  std::size_t queued_bytes_ = 0;
  std::size_t queued_text_bytes_ = 0;
  boost::asio::steady_timer write_deadline_;
  bool open_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
  std::optional<boost::beast::websocket::close_reason> close_reason_;
};

}  // namespace sandboxd::api
