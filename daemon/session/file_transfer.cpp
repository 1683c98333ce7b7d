#include "daemon/session/file_transfer.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>

namespace sandboxd::session {

namespace {

agent::ExecRequest tool_request(std::vector<std::string> argv, const std::string& user, bool stdin_open) {
  agent::ExecRequest request;
  request.argv = std::move(argv);
  request.cwd = "/";
  request.user = user;
  request.stdin_open = stdin_open;
  request.builtin = protocol::Builtin::kFileTool;
  return request;
}

Error machine_gone() { return Error{ErrorCode::kUnavailable, "the sandbox's machine went away during the transfer"}; }
Error cancelled() { return Error{ErrorCode::kCancelled, "the transfer was cancelled"}; }

}  // namespace

std::shared_ptr<FileRead> FileRead::start(const std::shared_ptr<agent::GuestAgent>& agent, const std::string& path,
                                          const std::string& user, FileReadHandlers handlers, BusyToken busy) {
  auto read = std::shared_ptr<FileRead>(new FileRead());
  read->agent_ = agent;
  read->handlers_ = std::move(handlers);
  read->busy_ = std::move(busy);
  // The agent's exec holds the read until the exec has ended.
  agent::ExecObserver observer;
  observer.on_started = [](std::uint32_t) {};
  observer.on_output = [read](protocol::Stream stream, Bytes&& data) { read->on_output(stream, std::move(data)); };
  observer.on_stdin_credit = [] {};
  observer.on_exit = [read](const protocol::Exit& exit) { read->on_exit(exit); };
  observer.on_failed = [read](const std::string& reason) {
    read->finish(Unexpected{Error{ErrorCode::kUnavailable, "the read did not run: " + reason}});
  };
  read->exec_id_ = agent->start_exec(tool_request({"read", path}, user, false), std::move(observer));
  return read;
}

FileRead::~FileRead() { finish(Unexpected{machine_gone()}); }

void FileRead::finish(Expected<std::uint64_t, Error> result) {
  if (!handlers_.on_done) return;
  auto done = std::move(handlers_.on_done);
  handlers_ = {};
  busy_.reset();
  done(std::move(result));
}

void FileRead::consumed(std::size_t n) {
  if (auto agent = agent_.lock()) agent->ack_output(exec_id_, static_cast<std::uint32_t>(n));
}

void FileRead::cancel() {
  if (!handlers_.on_done || failure_) return;
  failure_ = cancelled();
  if (auto agent = agent_.lock()) agent->signal(exec_id_, SIGKILL);
}

void FileRead::on_output(protocol::Stream stream, Bytes&& data) {
  auto agent = agent_.lock();
  if (!agent) return;
  auto n = static_cast<std::uint32_t>(data.size());
  if (stream == protocol::Stream::kStderr || failure_ || !handlers_.on_data) {
    if (stream == protocol::Stream::kStderr) err_.add(data);
    agent->ack_output(exec_id_, n);
    return;
  }
  std::size_t used = 0;
  while (!size_ && used < data.size()) {
    header_ += static_cast<char>(data[used++]);
    if (header_.size() == 8) {
      ByteReader r(as_bytes(header_));
      size_ = r.u64();
    }
  }
  if (used > 0) agent->ack_output(exec_id_, static_cast<std::uint32_t>(used));
  if (used == data.size()) return;
  std::uint64_t more = data.size() - used;
  if (more > *size_ - offset_) {  // beyond the size it announced: not our tool talking
    failure_ = Error{ErrorCode::kInternal, "the guest sent more of the file than its size"};
    agent->signal(exec_id_, SIGKILL);
    agent->ack_output(exec_id_, static_cast<std::uint32_t>(more));
    return;
  }
  if (used > 0) data.erase(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(used));
  std::uint64_t at = offset_;
  offset_ += more;
  handlers_.on_data(at, std::move(data));
}

void FileRead::on_exit(const protocol::Exit& exit) {
  if (failure_) return finish(Unexpected{*failure_});
  if (exit.kind != protocol::ExitKind::kExited || exit.status != 0)
    return finish(Unexpected{file_tool_failure(exit, err_.text)});
  if (!size_ || offset_ != *size_)
    return finish(Unexpected{Error{ErrorCode::kInternal, "the guest's file tool ended before the whole file"}});
  finish(*size_);
}

std::shared_ptr<FileWrite> FileWrite::start(const std::shared_ptr<agent::GuestAgent>& agent,
                                            const FileWriteParams& params, FileWriteHandlers handlers,
                                            BusyToken busy) {
  auto write = std::shared_ptr<FileWrite>(new FileWrite());
  write->agent_ = agent;
  write->handlers_ = std::move(handlers);
  write->busy_ = std::move(busy);
  write->size_ = params.size;
  std::weak_ptr<FileWrite> weak = write;
  agent::ExecObserver observer;
  observer.on_started = [](std::uint32_t) {};
  observer.on_output = [write](protocol::Stream stream, Bytes&& data) {
    if (stream == protocol::Stream::kStderr) write->err_.add(data);
    if (auto a = write->agent_.lock()) a->ack_output(write->exec_id_, static_cast<std::uint32_t>(data.size()));
  };
  observer.on_stdin_credit = [weak] {
    auto self = weak.lock();
    if (self && self->handlers_.on_room) self->handlers_.on_room();
  };
  observer.on_exit = [write](const protocol::Exit& exit) { write->on_exit(exit); };
  observer.on_failed = [write](const std::string& reason) {
    write->finish(Unexpected{Error{ErrorCode::kUnavailable, "the write did not run: " + reason}});
  };
  std::string mode = "-";
  if (params.mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%o", *params.mode & 07777);
    mode = text;
  }
  write->exec_id_ = agent->start_exec(
      tool_request({"write", params.path, std::to_string(params.size), mode}, params.user, true), std::move(observer));
  if (params.size == 0) agent->write_stdin(write->exec_id_, {}, true);
  return write;
}

FileWrite::~FileWrite() { finish(Unexpected{machine_gone()}); }

void FileWrite::finish(Expected<std::uint64_t, Error> result) {
  if (!handlers_.on_done) return;
  auto done = std::move(handlers_.on_done);
  handlers_ = {};
  busy_.reset();
  done(std::move(result));
}

std::size_t FileWrite::write(ByteSpan data) {
  auto agent = agent_.lock();
  if (!agent || cancelled_ || !handlers_.on_done) return 0;
  std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(
      {data.size(), remaining(), static_cast<std::uint64_t>(agent->stdin_credit(exec_id_))}));
  if (take == 0) return 0;
  bool last = written_ + take == size_;
  std::size_t taken = agent->write_stdin(exec_id_, data.first(take), last);
  written_ += taken;
  return taken;
}

void FileWrite::cancel() {
  if (cancelled_ || !handlers_.on_done) return;
  cancelled_ = true;
  if (remaining() == 0) return;  // all sent: the tool finishes what it has
  if (auto agent = agent_.lock()) agent->write_stdin(exec_id_, {}, true);
}

void FileWrite::on_exit(const protocol::Exit& exit) {
  bool ok = exit.kind == protocol::ExitKind::kExited && exit.status == 0;
  if (!ok) return finish(Unexpected{cancelled_ ? cancelled() : file_tool_failure(exit, err_.text)});
  if (written_ != size_)
    return finish(Unexpected{Error{ErrorCode::kInternal, "the guest's file tool ended before the whole file"}});
  finish(size_);
}

}  // namespace sandboxd::session
