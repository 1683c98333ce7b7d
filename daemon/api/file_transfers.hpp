// One connection's file transfers (file.read, file.write; WS_PROTOCOL.md,
// "Files"): the binary frames that carry a file's bytes each way, paced so
// that no transfer holds more than the protocol's windows in memory.
//
//   - file.read: the guest's chunks become kFileData frames. A chunk is sent
//     only while the connection has room (WsConnection::can_send) and is
//     acknowledged to the guest only once it is queued, so a client that
//     reads slowly slows the guest's read, never grows the daemon. The
//     response comes after the last data frame.
//   - file.write: kFileUpload frames go to the guest's stdin credit; what the
//     credit cannot take yet waits here and stops the connection's reading
//     (blocked()), as exec stdin does. The response comes once the file is
//     in place. When the guest refused the write early, the bytes the client
//     still sends for it are dropped without an answer, up to its size.
#pragma once

#include <boost/json/value.hpp>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "daemon/api/requests.hpp"
#include "daemon/session/file_transfer.hpp"

namespace sandboxd::api {

class ClientSession;

class FileTransfers {
 public:
  // At most this many transfers per connection, running or draining.
  static constexpr std::size_t kMaxTransfers = 64;

  void start_read(ClientSession& session, const boost::json::value& request_id, FileReadRequest request);
  void start_write(ClientSession& session, const boost::json::value& request_id, FileWriteRequest request);
  void cancel(ClientSession& session, const boost::json::value& request_id, const std::string& transfer);
  // A kFileUpload frame's payload.
  void on_upload(ClientSession& session, const std::string& transfer, ByteSpan data);
  // The connection has room again: held file data goes out.
  void on_room(ClientSession& session);
  // Upload bytes wait for the guest: the connection should not read on.
  bool blocked() const;
  // The connection is over: every transfer is cancelled.
  void close_all();

 private:
  struct Transfer {
    boost::json::value request_id;
    std::string id;
    bool is_read = false;
    bool pending = false;  // counts against max_pending_requests until answered
    bool answered = false;
    // file.read
    std::shared_ptr<session::FileRead> read;
    std::deque<std::pair<std::shared_ptr<const std::string>, std::size_t>> held;  // frame, data bytes
    std::optional<Expected<std::uint64_t, session::Error>> result;  // the read ended; answer after `held`
    // file.write
    std::shared_ptr<session::FileWrite> write;
    Bytes backlog;               // upload bytes the guest's credit has not taken yet
    std::uint64_t expected = 0;  // upload bytes the client still owes
  };
  using TransferPtr = std::shared_ptr<Transfer>;

  bool claim(ClientSession& session, const boost::json::value& request_id, const std::string& transfer);
  void send_held(ClientSession& session, Transfer& t);
  void answer(ClientSession& session, const TransferPtr& t, Expected<std::uint64_t, session::Error> result);
  void flush_backlog(ClientSession& session, Transfer& t);
  void forget(const std::string& id);

  std::map<std::string, TransferPtr> transfers_;
};

}  // namespace sandboxd::api
