#include "clients/sandboxctl/file_copy.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json/object.hpp>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "clients/sandboxctl/control_connection.hpp"
#include "clients/sandboxctl/exec_stream.hpp"
#include "clients/sandboxctl/json_access.hpp"
#include "protocol/write_fully.hpp"
#include "protocol/ws/binary_frame.hpp"

namespace sandboxd::ctl {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace ws = protocol::ws;

// A quarter of the daemon's default max_frame_bytes per frame; four queued
// keep the socket busy while the next chunk is read from disk.
constexpr std::size_t kChunkBytes = 256 << 10;
constexpr std::size_t kFramesQueued = 4;

// As `cat big | head` ends: the shell reports SIGPIPE.
constexpr int kExitStdoutClosed = 128 + SIGPIPE;

std::string errno_text() { return std::strerror(errno); }

// ---- The command line

struct RemotePath {
  std::string sandbox;
  std::string path;
  std::string display() const { return sandbox + ":" + path; }
};

// An argument with a ':' before its first '/' names a sandbox's file, as scp
// reads its arguments; "./a:b" is the local file "a:b".
Expected<std::optional<RemotePath>, std::string> parse_remote(const std::string& arg) {
  auto colon = arg.find(':');
  if (colon == std::string::npos || colon == 0 || arg.find('/') < colon) return std::optional<RemotePath>();
  RemotePath remote{arg.substr(0, colon), arg.substr(colon + 1)};
  if (remote.path.empty() || remote.path.front() != '/') {
    return Unexpected{"'" + arg + "': a path in a sandbox is absolute (SANDBOX:/PATH); a local file with ':' in " +
                      "its name is written ./" + arg};
  }
  return std::optional<RemotePath>(std::move(remote));
}

// The last component of `path`, trailing slashes ignored; empty for "/".
std::string last_component(std::string path) {
  while (!path.empty() && path.back() == '/') path.pop_back();
  return path.substr(path.rfind('/') + 1);
}

std::optional<unsigned> parse_mode(const std::string& text) {
  if (text.empty()) return std::nullopt;
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + static_cast<unsigned>(c - '0');
    if (mode > 07777) return std::nullopt;
  }
  return mode;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// What the command line asks for, with the destination's name completed.
struct CopyPlan {
  bool upload = false;
  RemotePath remote;
  std::string local;  // "-": stdin (upload) or stdout (download)
  std::optional<unsigned> mode;
  std::optional<std::string> user;
};

Expected<CopyPlan, std::string> plan_copy(const CopyOptions& options) {
  auto source = parse_remote(options.source);
  if (!source) return Unexpected{source.error()};
  auto destination = parse_remote(options.destination);
  if (!destination) return Unexpected{destination.error()};
  if (source->has_value() == destination->has_value()) {
    return Unexpected{
        std::string(source->has_value() ? "both SRC and DST are in a sandbox" : "neither SRC nor DST is in a sandbox") +
        ": one of them is SANDBOX:/PATH, the other a local path or -"};
  }

  if (options.source.empty() || options.destination.empty()) return Unexpected{std::string("an empty path")};

  CopyPlan plan;
  plan.user = options.user;
  if (options.mode) {
    plan.mode = parse_mode(*options.mode);
    if (!plan.mode) return Unexpected{"--mode '" + *options.mode + "': permission bits in octal, 0 to 7777"};
  }
  plan.upload = destination->has_value();
  if (plan.upload) {
    plan.remote = std::move(**destination);
    plan.local = options.source;
    if (plan.remote.path.back() == '/') {
      if (plan.local == "-") return Unexpected{std::string("stdin has no name: give DST a file name")};
      plan.remote.path += last_component(plan.local);
    }
    return plan;
  }
  plan.remote = std::move(**source);
  plan.local = options.destination;
  if (plan.local != "-" && (plan.local.back() == '/' || is_directory(plan.local))) {
    auto name = last_component(plan.remote.path);
    if (name.empty()) return Unexpected{"'" + options.source + "' has no file name to give the copy"};
    plan.local += (plan.local.back() == '/' ? "" : "/") + name;
  }
  return plan;
}

// ---- Local files

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  int get() const { return fd_; }
  // close(2)'s own result: on some file systems a failed write shows only here.
  bool close() { return ::close(std::exchange(fd_, -1)) == 0; }

 private:
  int fd_;
};

// read(2) until `buffer` is full or end of input, waiting on a descriptor
// left non-blocking; the count read, or -1 with errno set.
ssize_t read_fully(int fd, std::span<std::byte> buffer) {
  std::size_t got = 0;
  while (got < buffer.size()) {
    ssize_t n = ::read(fd, buffer.data() + got, buffer.size() - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN) {
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, -1);
    } else if (errno != EINTR) {
      return -1;
    }
  }
  return static_cast<ssize_t>(got);
}

struct UploadSource {
  Fd fd;  // positioned at the first byte to send
  std::uint64_t size = 0;
  std::string name;  // for messages
};

// A pipe or a terminal has no size to put in file.write: its bytes are
// spooled to an unlinked file under $TMPDIR first.
Expected<UploadSource, std::string> spool(int input, const std::string& name) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string dir = tmpdir && *tmpdir ? tmpdir : "/tmp";
  Fd file(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (file.get() < 0) {  // a file system without O_TMPFILE
    std::string path = dir + "/sandboxctl-spool-XXXXXX";
    file = Fd(::mkostemp(path.data(), O_CLOEXEC));
    if (file.get() < 0) return Unexpected{"cannot make a temporary file in " + dir + ": " + errno_text()};
    ::unlink(path.c_str());
  }
  std::vector<std::byte> buffer(kChunkBytes);
  std::uint64_t size = 0;
  for (;;) {
    ssize_t n = read_fully(input, buffer);
    if (n < 0) return Unexpected{"reading " + name + ": " + errno_text()};
    if (n == 0) break;
    if (!write_fully(file.get(), std::span(buffer).first(static_cast<std::size_t>(n)))) {
      return Unexpected{"spooling " + name + " to " + dir + ": " + errno_text()};
    }
    size += static_cast<std::uint64_t>(n);
  }
  if (::lseek(file.get(), 0, SEEK_SET) != 0) return Unexpected{"rewinding the spool of " + name + ": " + errno_text()};
  return UploadSource{std::move(file), size, name};
}

Expected<UploadSource, std::string> open_upload_source(const std::string& local) {
  bool from_stdin = local == "-";
  std::string name = from_stdin ? "stdin" : "'" + local + "'";
  Fd fd(from_stdin ? ::dup(STDIN_FILENO) : ::open(local.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) return Unexpected{"cannot open " + name + ": " + errno_text()};
  if (S_ISDIR(st.st_mode)) return Unexpected{name + " is a directory: cp copies one file"};
  if (!S_ISREG(st.st_mode)) return spool(fd.get(), name);
  // Stdin redirected from a file is sent from where its reader stands.
  off_t at = ::lseek(fd.get(), 0, SEEK_CUR);
  if (at < 0 || at > st.st_size) return spool(fd.get(), name);
  return UploadSource{std::move(fd), static_cast<std::uint64_t>(st.st_size - at), name};
}

// Where a download goes: stdout as it comes, or a temporary file beside the
// destination that commit() renames over it. Destroyed uncommitted, the
// temporary file is removed.
class DownloadSink {
 public:
  static Expected<DownloadSink, std::string> open(const std::string& local, std::optional<unsigned> mode) {
    DownloadSink sink;
    if (local == "-") return sink;
    auto slash = local.rfind('/');
    std::string dir = slash == std::string::npos ? "." : local.substr(0, slash + 1);
    std::string name = local.substr(slash == std::string::npos ? 0 : slash + 1);
    std::string temp = dir + (dir.back() == '/' ? "" : "/") + "." + name + ".sandboxctl-XXXXXX";
    Fd fd(::mkostemp(temp.data(), O_CLOEXEC));
    if (fd.get() < 0) return Unexpected{"cannot create a file in " + dir + ": " + errno_text()};
    sink.final_path_ = local;
    sink.temp_path_ = temp;
    sink.fd_ = std::move(fd);
    // mkostemp makes it 0600; give it what a new file or the one it
    // replaces would have.
    struct stat existing {};
    mode_t bits;
    if (mode) {
      bits = static_cast<mode_t>(*mode);
    } else if (::stat(local.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)) {
      bits = existing.st_mode & 07777;
    } else {
      mode_t mask = ::umask(0);
      ::umask(mask);
      bits = 0666 & ~mask;
    }
    if (::fchmod(sink.fd_.get(), bits) != 0) return Unexpected{"cannot set the mode of " + temp + ": " + errno_text()};
    return sink;
  }

  DownloadSink(DownloadSink&& other) noexcept
      : final_path_(std::move(other.final_path_)),
        temp_path_(std::exchange(other.temp_path_, std::string())),
        fd_(std::move(other.fd_)) {}
  DownloadSink& operator=(DownloadSink&&) = delete;
  ~DownloadSink() {
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  }

  bool to_stdout() const { return final_path_.empty(); }
  std::string name() const { return to_stdout() ? std::string("stdout") : "'" + final_path_ + "'"; }

  // False with errno set when the bytes could not be written.
  bool write(ByteSpan data) { return write_fully(to_stdout() ? STDOUT_FILENO : fd_.get(), data); }

  Expected<void, std::string> commit() {
    if (to_stdout()) return {};
    if (::fsync(fd_.get()) != 0 || !fd_.close()) return Unexpected{"writing " + temp_path_ + ": " + errno_text()};
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      return Unexpected{"renaming " + temp_path_ + " to " + final_path_ + ": " + errno_text()};
    }
    temp_path_.clear();
    return {};
  }

 private:
  DownloadSink() = default;

  std::string final_path_;  // empty: stdout
  std::string temp_path_;   // empty: nothing to remove
  Fd fd_;
};

// ---- The connection

// What runs on a CopyLoop's connection once it is open.
class Transfer {
 public:
  virtual ~Transfer() = default;
  virtual void start(ControlConnection& connection) = 0;
  virtual void on_output(const ws::BinaryFrameView& /*frame*/) {}
  // The connection carries this one transfer only, so an error without an
  // id (an answer to an upload frame) is about it.
  virtual void on_stray_error(const json::object& error) = 0;
};

RequestError error_from(const json::object& error) {
  return {false, string_member(error, "code").value_or(""), string_member(error, "message").value_or(""), error};
}

// Connects, runs a Transfer, and returns the status it finishes with: the
// with_connection of the other request-and-answer commands, plus binary
// frames and signals. SIGINT, SIGTERM and SIGHUP end it with 128+N; closing
// the connection then cancels the transfer in the daemon (an upload leaves
// the guest's file as it was) and the destructors remove a partial download.
class CopyLoop {
 public:
  explicit CopyLoop(const Target& target) : target_(target), signals_(io_, SIGINT, SIGTERM, SIGHUP) {}

  const Target& target() const { return target_; }

  int run(Transfer& transfer) {
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (!ec) finish(128 + signo);
    });
    ControlConnection::Handlers handlers;
    handlers.on_output = [this, &transfer](const ws::BinaryFrameView& frame) {
      if (!finished_) transfer.on_output(frame);
    };
    handlers.on_stray_error = [this, &transfer](const json::object& error) {
      if (!finished_) transfer.on_stray_error(error);
    };
    handlers.on_lost = [this](const std::string& why) {
      if (finished_) return;
      std::cerr << "sandboxctl: lost the connection to the daemon: " << why << "\n";
      finish(kExitUsage);
    };
    connection_ = ControlConnection::create(io_, std::move(handlers));
    connection_->connect(target_.url, target_.token, [this, &transfer](Expected<void, ConnectError> result) {
      if (finished_) return;
      if (!result) {
        std::cerr << connect_failure_text(result.error(), target_);
        return finish(kExitUsage);
      }
      transfer.start(*connection_);
    });
    io_.run();
    return status_;
  }

  void finish(int status) {
    if (finished_) return;
    finished_ = true;
    status_ = status;
    boost::system::error_code ignored;
    signals_.clear(ignored);
    signals_.cancel(ignored);
    if (connection_) connection_->close();
  }

  // An error answer about `remote`: status 1, or 2 when it is the
  // connection that failed.
  void fail(const RequestError& error, const RemotePath& remote) {
    std::cerr << request_failure_text(error, target_, remote.display());
    finish(error.connection_lost ? kExitUsage : kExitServerError);
  }

  // A local failure: status 1.
  void fail(const std::string& why) {
    std::cerr << "sandboxctl: " << why << "\n";
    finish(kExitServerError);
  }

 private:
  asio::io_context io_;
  const Target& target_;
  asio::signal_set signals_;
  std::shared_ptr<ControlConnection> connection_;
  bool finished_ = false;
  int status_ = kExitUsage;
};

json::object transfer_request(const char* op, const CopyPlan& plan, const std::string& transfer) {
  json::object req{{"op", op}, {"sandbox", plan.remote.sandbox}, {"path", plan.remote.path}, {"transfer", transfer}};
  if (plan.user) req["user"] = *plan.user;
  return req;
}

// file.write, and the file in upload frames right behind it: the protocol
// lets them follow the request without waiting. A frame is read from disk
// only when one of the kFramesQueued before it was handed to the socket.
class Upload final : public Transfer {
 public:
  Upload(CopyLoop& loop, const CopyPlan& plan, UploadSource source)
      : loop_(loop), plan_(plan), source_(std::move(source)), transfer_(generate_exec_id()) {}

  void start(ControlConnection& connection) override {
    connection_ = &connection;
    auto req = transfer_request("file.write", plan_, transfer_);
    req["size"] = source_.size;
    if (plan_.mode) req["mode"] = *plan_.mode;
    connection.request(std::move(req), [this](Expected<json::object, RequestError> answer) { on_written(answer); });
    send_more();
  }

  void on_stray_error(const json::object& error) override {
    stop();
    loop_.fail(error_from(error), plan_.remote);
  }

 private:
  void send_more() {
    while (!stopped_ && queued_ < kFramesQueued && sent_ < source_.size) {
      buffer_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, source_.size - sent_)));
      ssize_t n = read_fully(source_.fd.get(), buffer_);
      if (n < 0) {
        stop();
        return loop_.fail("reading " + source_.name + ": " + errno_text());
      }
      if (static_cast<std::size_t>(n) < buffer_.size()) {
        // The guest would wait for the rest of the size announced forever.
        stop();
        return loop_.fail(source_.name + " shrank while it was sent");
      }
      sent_ += buffer_.size();
      ++queued_;
      connection_->send_binary(ws::upload_frame(transfer_, buffer_), [this](bool written) { on_frame_sent(written); });
    }
  }

  // Unwritten (false): the connection is gone, and on_lost says so.
  void on_frame_sent(bool written) {
    --queued_;
    if (written) send_more();
  }

  void on_written(const Expected<json::object, RequestError>& answer) {
    // An early refusal comes before the frames are all out: send no more.
    stop();
    if (!answer) return loop_.fail(answer.error(), plan_.remote);
    loop_.finish(0);
  }

  void stop() { stopped_ = true; }

  CopyLoop& loop_;
  const CopyPlan& plan_;
  UploadSource source_;
  std::string transfer_;
  ControlConnection* connection_ = nullptr;
  std::vector<std::byte> buffer_;
  std::uint64_t sent_ = 0;  // bytes read and queued
  std::size_t queued_ = 0;  // frames queued and not yet handed to the socket
  bool stopped_ = false;
};

// file.read: data frames in order, each written out as it arrives (the
// daemon sends no faster than they are taken), then the answer with the
// size, which must be what arrived.
class Download final : public Transfer {
 public:
  Download(CopyLoop& loop, const CopyPlan& plan, DownloadSink sink)
      : loop_(loop), plan_(plan), sink_(std::move(sink)), transfer_(generate_exec_id()) {}

  void start(ControlConnection& connection) override {
    connection.request(transfer_request("file.read", plan_, transfer_),
                       [this](Expected<json::object, RequestError> answer) { on_read(answer); });
  }

  void on_output(const ws::BinaryFrameView& frame) override {
    if (frame.kind != ws::BinaryKind::kFileData || frame.exec_id != transfer_) return;
    if (frame.seq != received_) {
      return loop_.fail("the daemon sent bytes at offset " + std::to_string(frame.seq) + " where " +
                        std::to_string(received_) + " was next");
    }
    if (!sink_.write(frame.data)) {
      if (sink_.to_stdout() && errno == EPIPE) return loop_.finish(kExitStdoutClosed);
      return loop_.fail("writing " + sink_.name() + ": " + errno_text());
    }
    received_ += frame.data.size();
  }

  void on_stray_error(const json::object& error) override { loop_.fail(error_from(error), plan_.remote); }

 private:
  void on_read(const Expected<json::object, RequestError>& answer) {
    if (!answer) return loop_.fail(answer.error(), plan_.remote);
    auto size = int_member(*answer, "size");
    if (!size || static_cast<std::uint64_t>(*size) != received_) {
      return loop_.fail("the daemon announced " + (size ? std::to_string(*size) : std::string("no")) + " bytes for " +
                        plan_.remote.display() + " but sent " + std::to_string(received_));
    }
    auto committed = sink_.commit();
    if (!committed) return loop_.fail(committed.error());
    loop_.finish(0);
  }

  CopyLoop& loop_;
  const CopyPlan& plan_;
  DownloadSink sink_;
  std::string transfer_;
  std::uint64_t received_ = 0;  // the offset the next data frame must have
};

}  // namespace

int copy_command(const Target& target, const CopyOptions& options) {
  auto plan = plan_copy(options);
  if (!plan) {
    std::cerr << "sandboxctl: cp: " << plan.error() << "\n";
    return kExitUsage;
  }
  if (plan->upload) {
    // Spooling a pipe happens before the loop takes the signals, so Ctrl-C
    // still ends it at once.
    auto source = open_upload_source(plan->local);
    if (!source) {
      std::cerr << "sandboxctl: " << source.error() << "\n";
      return kExitServerError;
    }
    CopyLoop loop(target);
    Upload upload(loop, *plan, std::move(*source));
    return loop.run(upload);
  }
  // The loop first: from the temporary file's creation on, a signal ends
  // through the destructor that removes it.
  CopyLoop loop(target);
  auto sink = DownloadSink::open(plan->local, plan->mode);
  if (!sink) {
    std::cerr << "sandboxctl: " << sink.error() << "\n";
    return kExitServerError;
  }
  Download download(loop, *plan, std::move(*sink));
  return loop.run(download);
}

}  // namespace sandboxd::ctl
