#include "daemon/api/file_transfers.hpp"

#include "daemon/api/client_session.hpp"
#include "protocol/ws/binary_frame.hpp"

namespace sandboxd::api {

namespace {

// Finds the session and the transfer again from a guest callback: either
// may be gone by then.
template <class F>
auto with(std::weak_ptr<ClientSession> weak_session, std::string id, F f) {
  return [weak_session = std::move(weak_session), id = std::move(id), f = std::move(f)](auto&&... args) mutable {
    auto session = weak_session.lock();
    if (!session) return;
    f(*session, id, std::forward<decltype(args)>(args)...);
  };
}

}  // namespace

bool FileTransfers::claim(ClientSession& session, const boost::json::value& request_id, const std::string& transfer) {
  if (transfers_.contains(transfer)) {
    session.fail(request_id, ApiError::bad_request("transfer", "transfer " + transfer + " is in use on this connection"));
    return false;
  }
  if (transfers_.size() >= kMaxTransfers) {
    // Make room by forgetting a write that only drains (the guest refused it).
    for (auto it = transfers_.begin(); it != transfers_.end(); ++it) {
      if (it->second->answered) {
        transfers_.erase(it);
        break;
      }
    }
  }
  if (transfers_.size() >= kMaxTransfers) {
    session.fail(request_id, ApiError{ErrorCode::kLimitExceeded, "more than 64 file transfers on this connection", {}});
    return false;
  }
  return true;
}

void FileTransfers::start_read(ClientSession& session, const boost::json::value& request_id, FileReadRequest request) {
  if (!claim(session, request_id, request.transfer)) return;
  auto t = std::make_shared<Transfer>();
  t->request_id = request_id;
  t->id = request.transfer;
  t->is_read = true;
  std::weak_ptr<ClientSession> weak = session.weak_from_this();
  session::FileReadHandlers handlers;
  handlers.on_data = with(weak, t->id, [](ClientSession& s, const std::string& id, std::uint64_t offset, Bytes&& data) {
    auto& self = s.transfers();
    auto it = self.transfers_.find(id);
    if (it == self.transfers_.end() || !it->second->read) return;
    Bytes header = protocol::ws::output_frame_header(protocol::ws::BinaryKind::kFileData, id, offset);
    auto frame = std::make_shared<std::string>(as_chars(header));
    frame->append(as_chars(data));
    it->second->held.emplace_back(std::move(frame), data.size());
    self.send_held(s, *it->second);
  });
  handlers.on_done = with(weak, t->id, [](ClientSession& s, const std::string& id, Expected<std::uint64_t, session::Error> result) {
    auto& self = s.transfers();
    auto it = self.transfers_.find(id);
    if (it == self.transfers_.end() || it->second->answered) return;
    auto transfer = it->second;
    if (!result) transfer->held.clear();  // a partial file is of no use: the error goes now
    transfer->result = std::move(result);
    if (transfer->held.empty()) self.answer(s, transfer, std::move(*transfer->result));
  });
  transfers_[t->id] = t;
  t->pending = true;
  session.begin_pending();
  auto read = session.service().read_file(session.owner(), request.sandbox, request.path, request.user, std::move(handlers));
  if (!read) return answer(session, t, Unexpected{read.error()});
  if (!t->answered) t->read = std::move(*read);  // else it failed at once (the VM was gone)
}

void FileTransfers::send_held(ClientSession& session, Transfer& t) {
  auto& connection = session.connection();
  while (!t.held.empty() && connection.can_send()) {
    auto [frame, data_bytes] = std::move(t.held.front());
    t.held.pop_front();
    connection.send_binary(std::move(frame));
    // Queued: the guest may send the next chunk.
    if (t.read) t.read->consumed(data_bytes);
  }
}

void FileTransfers::on_room(ClientSession& session) {
  std::vector<TransferPtr> reads;
  for (auto& [id, t] : transfers_)
    if (t->read && !t->answered) reads.push_back(t);
  for (auto& t : reads) {
    send_held(session, *t);
    if (t->held.empty() && t->result && !t->answered) answer(session, t, std::move(*t->result));
  }
}

void FileTransfers::answer(ClientSession& session, const TransferPtr& t, Expected<std::uint64_t, session::Error> result) {
  if (t->answered) return;
  t->answered = true;
  if (t->pending) session.end_pending();
  t->pending = false;
  if (!result) {
    auto error = ApiError::from_domain(result.error());
    error.details["transfer"] = t->id;
    session.fail(t->request_id, error);
  } else {
    session.respond(t->request_id, {{"transfer", t->id}, {"size", *result}});
  }
  t->read.reset();
  t->write.reset();
  t->backlog.clear();
  // A write the client still owes bytes for drains them first.
  if (t->expected == 0) forget(t->id);
  session.stdin_room();
}

void FileTransfers::forget(const std::string& id) { transfers_.erase(id); }

void FileTransfers::start_write(ClientSession& session, const boost::json::value& request_id, FileWriteRequest request) {
  if (!claim(session, request_id, request.transfer)) return;
  auto t = std::make_shared<Transfer>();
  t->request_id = request_id;
  t->id = request.transfer;
  t->expected = request.params.size;
  std::weak_ptr<ClientSession> weak = session.weak_from_this();
  session::FileWriteHandlers handlers;
  handlers.on_room = with(weak, t->id, [](ClientSession& s, const std::string& id) {
    auto& self = s.transfers();
    auto it = self.transfers_.find(id);
    if (it == self.transfers_.end()) return;
    self.flush_backlog(s, *it->second);
    if (it->second->backlog.empty()) s.stdin_room();
  });
  handlers.on_done = with(weak, t->id, [](ClientSession& s, const std::string& id, Expected<std::uint64_t, session::Error> result) {
    auto& self = s.transfers();
    auto it = self.transfers_.find(id);
    if (it == self.transfers_.end()) return;
    self.answer(s, it->second, std::move(result));
  });
  transfers_[t->id] = t;
  t->pending = true;
  session.begin_pending();
  auto write = session.service().write_file(session.owner(), request.sandbox, request.params, std::move(handlers));
  if (!write) return answer(session, t, Unexpected{write.error()});
  if (!t->answered) t->write = std::move(*write);
}

void FileTransfers::flush_backlog(ClientSession&, Transfer& t) {
  if (!t.write || t.backlog.empty()) return;
  std::size_t taken = t.write->write(t.backlog);
  t.backlog.erase(t.backlog.begin(), t.backlog.begin() + static_cast<std::ptrdiff_t>(taken));
}

void FileTransfers::on_upload(ClientSession& session, const std::string& id, ByteSpan data) {
  auto it = transfers_.find(id);
  auto refuse = [&](ApiError e) {
    e.details["transfer"] = id;
    session.fail(nullptr, e);
  };
  if (it == transfers_.end() || it->second->is_read)
    return refuse({ErrorCode::kUnknownTransfer, "no file.write with transfer " + id + " on this connection", {}});
  auto t = it->second;
  if (data.size() > t->expected) {
    refuse({ErrorCode::kBadFrame, "more upload bytes than the file.write's size", {}});
    if (t->write) t->write->cancel();
    t->expected = 0;
    if (t->answered) forget(id);
    return;
  }
  t->expected -= data.size();
  if (!t->write) {  // answered already (refused early): drain
    if (t->expected == 0) forget(id);
    return;
  }
  if (t->backlog.empty()) {
    std::size_t taken = t->write->write(data);
    data = data.subspan(taken);
  }
  t->backlog.insert(t->backlog.end(), data.begin(), data.end());
}

bool FileTransfers::blocked() const {
  for (const auto& [id, t] : transfers_)
    if (!t->backlog.empty()) return true;
  return false;
}

void FileTransfers::cancel(ClientSession& session, const boost::json::value& request_id, const std::string& id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end() || it->second->answered)
    return session.fail(request_id, ApiError{ErrorCode::kUnknownTransfer, "no running transfer " + id, {}});
  auto t = it->second;
  t->expected = 0;  // later frames for it are refused
  if (t->read) t->read->cancel();
  if (t->write) t->write->cancel();
  session.respond(request_id, {{"transfer", id}});
}

void FileTransfers::close_all() {
  auto all = std::move(transfers_);
  transfers_.clear();
  for (auto& [id, t] : all) {
    t->answered = true;
    if (t->read) t->read->cancel();
    if (t->write) t->write->cancel();
  }
}

}  // namespace sandboxd::api
