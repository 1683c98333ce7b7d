// The host's proxy for the sandbox-agent in one VM: starts execs, routes their
// messages by id, and keeps the stdin credit the protocol allows.
//
// Observers receive output as it arrives and must call ack_output() once they
// have delivered it; that acknowledgement is what lets the guest send more,
// so a slow consumer on the host slows the process in the guest.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/agent/agent_channel.hpp"
#include "protocol/messages.hpp"

namespace sandboxd::agent {

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  bool stdin_open = false;
  // Set: the process runs on a pseudo-terminal of this size (TERM goes in env).
  std::optional<protocol::Terminal> pty;
  std::string user;  // the guest account; empty: root
  protocol::Builtin builtin = protocol::Builtin::kNone;
};

struct ExecObserver {
  std::function<void(std::uint32_t pid)> on_started;
  std::function<void(protocol::Stream, Bytes&&)> on_output;
  std::function<void()> on_stdin_credit;  // more stdin may be written now
  std::function<void(const protocol::Exit&)> on_exit;
  // The exec ended without an Exit: the guest refused it or the VM is gone.
  std::function<void(const std::string& reason)> on_failed;
};

class GuestAgent : public std::enable_shared_from_this<GuestAgent> {
 public:
  struct Handlers {
    std::function<void(const protocol::Hello&)> on_hello;
    std::function<void(const std::string& reason)> on_closed;
    // Something the guest sent that made no sense (malformed frames, errors
    // about nothing we asked). Counted and reported, never fatal.
    std::function<void(const std::string& what)> on_protocol_problem;
  };

  explicit GuestAgent(std::shared_ptr<AgentChannel> channel);
  void start(Handlers handlers);

  std::uint32_t start_exec(const ExecRequest& request, ExecObserver observer);
  // How many stdin bytes may be sent to exec `id` now.
  std::size_t stdin_credit(std::uint32_t id) const;
  // Output acknowledgements are batched: one OutputAck per quarter window
  // instead of one per chunk, which spares the guest a wakeup per chunk
  // while leaving it credit to keep writing.
  static constexpr std::uint32_t kAckBatch = protocol::kOutputWindow / 4;

  // Sends up to stdin_credit(id) bytes (the rest is the caller's to keep) and
  // optionally eof. Returns how many bytes were taken.
  std::size_t write_stdin(std::uint32_t id, ByteSpan data, bool eof);
  void ack_output(std::uint32_t id, std::uint32_t bytes);
  void signal(std::uint32_t id, int signo);
  // New window size for a pty exec; nothing happens for an exec that is not
  // running or has no terminal (the guest would refuse it).
  void resize(std::uint32_t id, std::uint16_t cols, std::uint16_t rows);
  void ping(std::function<void()> on_pong);
  void shutdown();

  bool connected() const { return !closed_; }
  const std::optional<protocol::Hello>& hello() const { return hello_; }
  std::size_t running_execs() const { return execs_.size(); }
  AgentChannel& channel() { return *channel_; }

 private:
  struct Exec {
    ExecObserver observer;
    std::size_t stdin_unacked = 0;
    std::uint32_t output_to_ack = 0;  // delivered, not yet acknowledged
    bool stdin_closed = false;
    bool pty = false;
    // Errors that refuse a start come instead of ExecStarted; after it, an
    // error about the exec leaves it running.
    bool started = false;
  };
  void on_message(protocol::Message&& m);
  void on_closed(const std::string& reason);
  Exec* find(std::uint32_t id);

  std::shared_ptr<AgentChannel> channel_;
  Handlers handlers_;
  std::optional<protocol::Hello> hello_;
  std::map<std::uint32_t, Exec> execs_;
  std::uint32_t next_exec_id_ = 1;
  std::map<std::uint64_t, std::function<void()>> pings_;
  std::uint64_t next_ping_ = 1;
  bool closed_ = false;
};

}  // namespace sandboxd::agent
