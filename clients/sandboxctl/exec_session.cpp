#include "clients/sandboxctl/exec_session.hpp"

#include <poll.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <memory>

#include "clients/sandboxctl/exec_stream.hpp"
#include "clients/sandboxctl/json_access.hpp"
#include "clients/sandboxctl/stdin_reader.hpp"
#include "clients/sandboxctl/terminal_mode.hpp"
#include "protocol/write_fully.hpp"

namespace sandboxd::ctl {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int kSigPipe = 13;


const char* signal_name(int signo) {
  switch (signo) {
    case SIGINT: return "INT";
    case SIGTERM: return "TERM";
    case SIGHUP: return "HUP";
    default: return "TERM";
  }
}

class ExecSession {
 public:
  ExecSession(asio::io_context& io, const Target& target, ExecRequest request)
      : io_(io),
        target_(target),
        request_(std::move(request)),
        progress_(request_.exec_id, request_.mode == ExecRequest::Mode::kAttach ? request_.after_seq : 0),
        retry_timer_(io),
        signals_(io, SIGINT, SIGTERM, SIGHUP),
        winch_(io, SIGWINCH) {}

  int run() {
    bool attach = request_.mode == ExecRequest::Mode::kAttach;
    if (request_.forward_stdin && !(attach && request_.read_only)) {
      stdin_reader_ = std::make_unique<StdinReader>(
          io_, STDIN_FILENO, [this](Bytes data) { on_stdin(std::move(data)); }, [this] { on_stdin_end(); });
    }
    if (!attach && request_.tty) {
      tty_ = true;
      raw_ = request_.forward_stdin ? std::make_unique<RawTerminal>(STDIN_FILENO)
                                    : std::make_unique<RawTerminal>(STDOUT_FILENO, RawTerminal::Mode::kOutputOnly);
    }
    wait_signals();
    wait_winch();
    connect();
    io_.run();
    return status_;
  }

 private:
  struct StdinFrame {
    Bytes frame;
    std::size_t payload = 0;
    bool sent = false;  // handed to the current connection
  };

  bool attach_mode() const { return request_.mode == ExecRequest::Mode::kAttach; }
  bool may_write() const { return !(attach_mode() && request_.read_only); }
  bool current(std::uint64_t generation) const { return generation == generation_ && !finished_; }

  void connect() {
    std::uint64_t generation = ++generation_;
    ControlConnection::Handlers handlers;
    handlers.on_event = [this, generation](const json::object& event) {
      if (current(generation)) on_event(event);
    };
    handlers.on_output = [this, generation](const protocol::ws::BinaryFrameView& frame) {
      if (current(generation)) on_output(frame);
    };
    handlers.on_stray_error = [this, generation](const json::object& error) {
      if (current(generation)) on_stray_error(error);
    };
    handlers.on_lost = [this, generation](const std::string& why) {
      if (current(generation)) on_lost(why);
    };
    conn_ = ControlConnection::create(io_, std::move(handlers));
    conn_->connect(target_.url, target_.token, [this, generation](Expected<void, ConnectError> result) {
      if (current(generation)) on_connected(std::move(result));
    });
  }

  void on_connected(Expected<void, ConnectError> result) {
    if (!result) {
      const auto& error = result.error();
      // A token the daemon refuses, or a URL that is no WebSocket API, will
      // not get better by retrying; nor is there anything to resume before
      // the first connection.
      if (!ever_connected_ || error.kind == ConnectError::Kind::kUnauthorized ||
          error.kind == ConnectError::Kind::kHttp) {
        restore_terminal();
        write_text(2, connect_failure_text(error, target_));
        return finish(kExitUsage);
      }
      last_error_ = error.message;
      return schedule_reconnect();
    }
    ever_connected_ = true;
    if (!attach_mode() && !start_answered_) return start_exec();
    attach_exec();
  }

  void start_exec() {
    json::object req{{"op", "exec.start"}, {"sandbox", request_.sandbox}, {"exec", request_.exec_id}};
    if (request_.shell) {
      req["shell"] = *request_.shell;
    } else {
      json::array argv;
      for (const auto& arg : request_.argv) argv.emplace_back(arg);
      req["argv"] = std::move(argv);
    }
    if (!request_.env.empty()) req["env"] = request_.env;
    if (request_.cwd) req["cwd"] = *request_.cwd;
    if (request_.user) req["user"] = *request_.user;
    if (request_.timeout_ms) req["timeout_ms"] = *request_.timeout_ms;
    req["stdin"] = request_.forward_stdin;
    if (request_.tty) {
      auto size = local_terminal_size().value_or(TerminalSize{80, 24});
      json::object pty{{"cols", size.cols}, {"rows", size.rows}};
      if (const char* term = std::getenv("TERM"); term != nullptr && *term != '\0') pty["term"] = term;
      req["pty"] = std::move(pty);
      sent_size_ = size;
    }
    std::uint64_t generation = generation_;
    conn_->request(std::move(req), [this, generation](Expected<json::object, RequestError> answer) {
      if (!current(generation)) return;
      if (!answer) {
        // A lost connection is retried from on_lost with the same exec id.
        if (!answer.error().connection_lost) fail_request(answer.error());
        return;
      }
      start_answered_ = true;
      // The exec already exists: a start whose answer was lost, or an id
      // used before. Either way the start attached nothing: attach now.
      if (bool_member(*answer, "existing").value_or(false)) return attach_exec();
      on_attached();
    });
  }

  void attach_exec() {
    json::object req{{"op", "exec.attach"},
                     {"exec", request_.exec_id},
                     {"after_seq", progress_.last_seq()},
                     {"read_only", attach_mode() && request_.read_only}};
    std::uint64_t generation = generation_;
    conn_->request(std::move(req), [this, generation](Expected<json::object, RequestError> answer) {
      if (!current(generation)) return;
      if (!answer) {
        const auto& error = answer.error();
        if (error.connection_lost) return;
        if (error.code == "log_truncated") {
          auto first = int_member(error.error, "first_seq");
          if (first && *first > 0 && static_cast<std::uint64_t>(*first) > progress_.last_seq() + 1) {
            notice("the daemon no longer holds output before sequence number " + std::to_string(*first) +
                   "; some output is missing");
            progress_.skip_before(static_cast<std::uint64_t>(*first));
            return attach_exec();
          }
        }
        return fail_request(error);
      }
      const auto* exec = object_member(*answer, "exec");
      if (attach_mode() && !attached_once_) {
        // An exec started elsewhere on a pty: drive it like `shell` does.
        tty_ = exec != nullptr && bool_member(*exec, "pty").value_or(false);
        if (tty_ && !raw_) {
          raw_ = stdin_reader_ ? std::make_unique<RawTerminal>(STDIN_FILENO)
                               : std::make_unique<RawTerminal>(STDOUT_FILENO, RawTerminal::Mode::kOutputOnly);
        }
      }
      // Attached after its last entry (--after-seq past the end): no replay
      // will bring the exit, the Exec object already holds it.
      if (exec != nullptr && finished_before(*exec)) return;
      on_attached();
    });
  }

  bool finished_before(const json::object& exec) {
    const auto* exit = object_member(exec, "exit");
    auto last_seq = int_member(exec, "last_seq");
    if (string_member(exec, "state") != "exited" || exit == nullptr || !last_seq || *last_seq < 1 ||
        static_cast<std::uint64_t>(*last_seq) > progress_.last_seq())
      return false;
    json::object event{{"type", "event"}, {"event", "exec.exit"}, {"exec", request_.exec_id}};
    if (auto sandbox = string_member(exec, "sandbox")) event["sandbox"] = *sandbox;
    event["seq"] = *last_seq;
    for (const auto& [key, value] : *exit) event[key] = value;
    // Past its own last entry: take the exit without advancing.
    ExecProgress replay(request_.exec_id, static_cast<std::uint64_t>(*last_seq) - 1);
    if (replay.take_event(event) != ExecProgress::Event::kExit) return false;
    progress_ = std::move(replay);
    on_exit();
    return true;
  }

  void on_attached() {
    // Only an attachment ends a reconnect: a daemon that accepts connections
    // but drops them at once still runs out the 30 s.
    reconnecting_ = false;
    attached_ = true;
    attached_once_ = true;
    if (tty_ && may_write()) send_resize();
    for (const auto& name : pending_signals_) send_signal(name);
    pending_signals_.clear();
    flush_stdin();
  }

  void on_event(const json::object& event) {
    if (progress_.take_event(event) == ExecProgress::Event::kExit) on_exit();
  }

  void on_output(const protocol::ws::BinaryFrameView& frame) {
    if (!progress_.take_output(frame.exec_id, frame.seq)) return;
    if (frame.kind == protocol::ws::BinaryKind::kStderr) {
      if (!frame.data.empty()) stderr_mid_line_ = frame.data.back() != std::byte{'\n'};
      (void)write_fully(STDERR_FILENO, frame.data);
      return;
    }
    if (stdout_broken_ || write_fully(STDOUT_FILENO, frame.data)) return;
    // Whoever read our stdout is gone: end like a local pipeline would, the
    // remote writer with SIGPIPE and sandboxctl with 128+SIGPIPE.
    stdout_broken_ = true;
    if (!attached_ || !may_write()) return finish(128 + kSigPipe);
    json::object req{{"op", "exec.signal"}, {"exec", request_.exec_id}, {"signal", kSigPipe}};
    conn_->request(std::move(req), [this](Expected<json::object, RequestError>) { finish(128 + kSigPipe); });
  }

  void on_exit() {
    restore_terminal();
    const auto& exit = *progress_.exit();
    if (target_.json) {
      // On a line of its own even after output that did not end one.
      write_text(2, (stderr_mid_line_ ? "\n" : "") + json::serialize(progress_.exit_event()) + "\n");
    } else if (auto text = exit_notice(exit, progress_.timeout_ms()); !text.empty()) {
      notice(text);
    }
    finish(exit_status(exit));
  }

  void on_stray_error(const json::object& error) {
    auto code = string_member(error, "code").value_or("");
    if (code == "stdin_closed") {
      // The exec takes no more stdin (it was started without, or it is
      // closed): stop reading ours.
      stdin_closed_ = true;
      stdin_frames_.clear();
      if (stdin_reader_) stdin_reader_->stop();
      return;
    }
    // unknown_exec: stdin that raced a lost attachment; it is sent again
    // after the next attach.
    if (code == "unknown_exec") return;
    notice("the daemon reported: " + string_member(error, "message").value_or(code));
  }

  void on_lost(const std::string& why) {
    attached_ = false;
    for (auto& frame : stdin_frames_) frame.sent = false;
    last_error_ = why;
    if (!reconnecting_) {
      reconnecting_ = true;
      lost_at_ = Clock::now();
      backoff_.reset();
      notice("lost the connection to the daemon (" + why + "); reconnecting");
    }
    schedule_reconnect();
  }

  void schedule_reconnect() {
    reconnecting_ = true;
    auto elapsed = std::chrono::duration_cast<ReconnectBackoff::Duration>(Clock::now() - lost_at_);
    auto wait = backoff_.next(elapsed);
    if (!wait) {
      notice("could not reconnect to " + target_.url.display() + " within 30 s (" + last_error_ + "); the exec " +
             request_.exec_id + " may still be running");
      return finish(kExitUsage);
    }
    retry_timer_.expires_after(*wait);
    retry_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !finished_) connect();
    });
  }

  void wait_signals() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec || finished_) return;
      on_signal(signo);
      if (!finished_) wait_signals();
    });
  }

  void on_signal(int signo) {
    if (!may_write()) return finish(128 + signo);  // a read-only watcher just stops watching
    if (attached_) return send_signal(signal_name(signo));
    if (!ever_connected_ || reconnecting_) {
      // Nothing to deliver it to now: the user wants out.
      if (ever_connected_) notice("interrupted; the exec " + request_.exec_id + " may still be running");
      return finish(128 + signo);
    }
    pending_signals_.emplace_back(signal_name(signo));
  }

  void send_signal(const std::string& name) {
    json::object req{{"op", "exec.signal"}, {"exec", request_.exec_id}, {"signal", name}};
    // not_running: the exec ended meanwhile; its exit event follows.
    conn_->request(std::move(req), [](Expected<json::object, RequestError>) {});
  }

  void wait_winch() {
    winch_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec || finished_) return;
      if (tty_ && attached_ && may_write()) send_resize();
      if (!finished_) wait_winch();
    });
  }

  void send_resize() {
    auto size = local_terminal_size();
    if (!size || size == sent_size_) return;
    sent_size_ = size;
    json::object req{{"op", "exec.resize"}, {"exec", request_.exec_id}, {"cols", size->cols}, {"rows", size->rows}};
    conn_->request(std::move(req), [](Expected<json::object, RequestError>) {});
  }

  void on_stdin(Bytes data) {
    if (finished_ || stdin_closed_) return;
    std::size_t payload = data.size();
    stdin_frames_.push_back({protocol::ws::stdin_frame(request_.exec_id, data, false), payload, false});
    flush_stdin();
  }

  void on_stdin_end() {
    if (finished_ || stdin_closed_) return;
    stdin_frames_.push_back({protocol::ws::stdin_frame(request_.exec_id, {}, true), 0, false});
    flush_stdin();
  }

  // Sends the frames not yet handed to the current connection. A frame
  // leaves the queue once written; frames still queued when a connection is
  // lost never reached the daemon whole, so they are sent again after the
  // next attach.
  void flush_stdin() {
    if (!attached_ || stdin_closed_) return;
    std::uint64_t generation = generation_;
    for (auto& frame : stdin_frames_) {
      if (frame.sent) continue;
      frame.sent = true;
      conn_->send_binary(frame.frame, [this, generation](bool written) {
        if (!written || !current(generation) || stdin_frames_.empty()) return;
        std::size_t payload = stdin_frames_.front().payload;
        stdin_frames_.pop_front();
        if (stdin_reader_) stdin_reader_->release(payload);
      });
    }
  }

  void fail_request(const RequestError& error) {
    restore_terminal();
    write_text(2, request_failure_text(error, target_));
    finish(kExitServerError);
  }

  void restore_terminal() {
    if (raw_) raw_->restore();
  }

  static void write_text(int fd, const std::string& text) { (void)write_fully(fd, as_bytes(text)); }

  // A line on stderr that reads right also while the terminal is raw.
  void notice(const std::string& text) {
    bool raw = raw_ && raw_->active();
    write_text(2, "sandboxctl: " + text + (raw ? "\r\n" : "\n"));
  }

  void finish(int status) {
    if (finished_) return;
    finished_ = true;
    status_ = status;
    if (stdin_reader_) stdin_reader_->stop();
    restore_terminal();
    boost::system::error_code ignored;
    // Back to the default actions: a second ^C while the connection closes
    // ends sandboxctl at once.
    signals_.clear(ignored);
    signals_.cancel(ignored);
    winch_.clear(ignored);
    winch_.cancel(ignored);
    retry_timer_.cancel();
    if (conn_) conn_->close();
  }

  asio::io_context& io_;
  const Target& target_;
  ExecRequest request_;
  ExecProgress progress_;
  std::shared_ptr<ControlConnection> conn_;
  std::uint64_t generation_ = 0;
  bool ever_connected_ = false;
  bool start_answered_ = false;  // the exec exists: later connections attach
  bool attached_ = false;        // the current connection may send stdin, signals, sizes
  bool attached_once_ = false;
  bool reconnecting_ = false;
  Clock::time_point lost_at_;
  std::string last_error_;
  ReconnectBackoff backoff_;
  asio::steady_timer retry_timer_;
  asio::signal_set signals_;
  asio::signal_set winch_;
  std::unique_ptr<StdinReader> stdin_reader_;
  std::unique_ptr<RawTerminal> raw_;
  bool tty_ = false;  // the exec runs on a pty
  std::optional<TerminalSize> sent_size_;
  std::deque<StdinFrame> stdin_frames_;
  bool stdin_closed_ = false;
  std::vector<std::string> pending_signals_;
  bool stdout_broken_ = false;
  bool stderr_mid_line_ = false;  // the exec's stderr so far does not end in '\n'
  bool finished_ = false;
  int status_ = kExitUsage;
};

}  // namespace

int run_exec(const Target& target, const ExecRequest& request) {
  asio::io_context io;
  ExecSession session(io, target, request);
  return session.run();
}

}  // namespace sandboxd::ctl
