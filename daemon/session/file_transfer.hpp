// A file's contents streamed out of or into a sandbox (file.read,
// file.write), by the guest's file tool (protocol/README.md, "The file
// tool") over one exec's stdout or stdin, so the protocol's credit windows
// bound what is in flight: nothing holds a whole file.
//
// FileRead hands each chunk to its owner, which calls consumed() once the
// chunk is delivered; only then may the guest send more. FileWrite takes
// what its stdin credit allows and tells its owner when there is room again.
// Either ends with exactly one on_done, also when the machine goes away.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemon/agent/guest_agent.hpp"
#include "daemon/session/error.hpp"
#include "daemon/session/file_ops.hpp"

namespace sandboxd::session {

// Kept alive while a transfer runs: the sandbox is not idle meanwhile.
using BusyToken = std::shared_ptr<void>;

struct FileReadHandlers {
  std::function<void(std::uint64_t offset, Bytes&& data)> on_data;
  // The whole file was read (its size), or why not.
  std::function<void(Expected<std::uint64_t, Error>)> on_done;
};

class FileRead : public std::enable_shared_from_this<FileRead> {
 public:
  static std::shared_ptr<FileRead> start(const std::shared_ptr<agent::GuestAgent>& agent, const std::string& path,
                                         const std::string& user, FileReadHandlers handlers, BusyToken busy);
  ~FileRead();
  // `n` bytes handed to on_data have been delivered.
  void consumed(std::size_t n);
  // Stops the read; on_done reports it cancelled unless it had finished.
  void cancel();
  std::optional<std::uint64_t> size() const { return size_; }

 private:
  void on_output(protocol::Stream stream, Bytes&& data);
  void on_exit(const protocol::Exit& exit);
  void finish(Expected<std::uint64_t, Error> result);

  std::weak_ptr<agent::GuestAgent> agent_;
  std::uint32_t exec_id_ = 0;
  FileReadHandlers handlers_;
  BusyToken busy_;
  std::string header_;  // the u64 size, as it arrives
  std::optional<std::uint64_t> size_;
  std::uint64_t offset_ = 0;
  std::optional<Error> failure_;  // decided here while the tool still runs
  StderrTail err_;
};

struct FileWriteHandlers {
  std::function<void()> on_room;  // write() takes more now
  // The file is in place (its size), or why not.
  std::function<void(Expected<std::uint64_t, Error>)> on_done;
};

struct FileWriteParams {
  std::string path;
  std::uint64_t size = 0;
  std::optional<std::uint32_t> mode;  // unset: the replaced file's, or 0644
  std::string user;
};

class FileWrite : public std::enable_shared_from_this<FileWrite> {
 public:
  static std::shared_ptr<FileWrite> start(const std::shared_ptr<agent::GuestAgent>& agent, const FileWriteParams& params,
                                          FileWriteHandlers handlers, BusyToken busy);
  ~FileWrite();
  // Takes what the credit allows (never more than remaining()); returns how
  // many bytes it took. The last byte closes the tool's stdin.
  std::size_t write(ByteSpan data);
  std::uint64_t remaining() const { return size_ - written_; }
  // Closes stdin before the end: the tool drops what it wrote.
  void cancel();

 private:
  void on_exit(const protocol::Exit& exit);
  void finish(Expected<std::uint64_t, Error> result);

  std::weak_ptr<agent::GuestAgent> agent_;
  std::uint32_t exec_id_ = 0;
  FileWriteHandlers handlers_;
  BusyToken busy_;
  std::uint64_t size_ = 0;
  std::uint64_t written_ = 0;
  bool cancelled_ = false;
  StderrTail err_;
};

}  // namespace sandboxd::session
