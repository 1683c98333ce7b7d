// One sandbox: a machine handed to one owner, the execs running in it, its
// lifetime and idle timers, and its state events.
//
// States (views.hpp, SandboxState) and what moves them:
//
//   booting  --machine arrived-------------------> ready
//   booting  --boot failed / destroy / lifetime--> exited
//   ready    --destroy / lifetime / idle---------> stopping --machine gone--> exited
//   ready    --QEMU exited / guest agent lost----> crashed (reported once the machine is released)
//
// Whatever ends the sandbox ends every exec in it with an exec.exit (reason
// sandbox_destroyed or sandbox_crashed, with the sandbox's reason), fails
// the creates still waiting for it, and releases the machine before the end
// is reported. A sandbox is created booting, so that it can be listed, found
// by its create key and destroyed while its machine boots.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/session/error.hpp"
#include "daemon/session/exec.hpp"
#include "daemon/session/exec_sink.hpp"
#include "daemon/session/requests.hpp"
#include "daemon/session/views.hpp"
#include "daemon/vm/machine.hpp"

namespace sandboxd::session {

struct SandboxSettings {
  std::string id;
  std::string owner;
  std::optional<std::string> key;
  std::string image;
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  unsigned disk_mib = 0;  // 0: the image's default
  DiskBacking disk_backing = DiskBacking::kMemory;
  std::vector<MountInfo> mounts;  // as asked for; mounted once the machine is up
  std::vector<std::string> env;  // NAME=value, for every exec
  Labels labels;
  std::uint32_t lifetime_s = 0;      // 0: none
  std::uint32_t idle_timeout_s = 0;  // 0: none
  NetworkChoice network{net::EgressMode::kDenyAll, {}};
  std::size_t exec_log_bytes = 16u << 20;
  const LogFormat* log_format = nullptr;  // required
};

class Sandbox : public std::enable_shared_from_this<Sandbox> {
 public:
  using State = SandboxState;
  using Ready = std::function<void(Expected<std::shared_ptr<Sandbox>, Error>)>;
  static constexpr std::size_t kMaxRunningExecs = 64;
  // net.flow events to subscribers: a guest that opens flows faster is
  // reported in part, each event saying how many went unreported before it.
  static constexpr double kNetEventsPerSecond = 100;
  static constexpr double kNetEventBurst = 200;

  // A booting sandbox; its lifetime counts from now.
  Sandbox(boost::asio::io_context& io, SandboxSettings settings);
  ~Sandbox();

  // Arms the lifetime timer. `on_ended` runs once, after the sandbox reached
  // exited or crashed and released its machine.
  void begin(std::function<void(Sandbox&)> on_ended);
  // The boot's outcome. The machine gets `policy`; a machine that arrives
  // after the sandbox ended is stopped at once.
  void machine_arrived(Expected<vm::MachinePtr, std::string> machine, bool from_pool, net::EgressPolicy policy);
  // `done` runs once the sandbox is ready (at once if it is), or with why it
  // never will be.
  void when_ready(Ready done);

  // Replaces the network's rules for new flows (sandbox.set_network):
  // `policy` is what `choice` stands for. Only a ready sandbox's network can
  // be changed.
  Expected<void, Error> set_network(NetworkChoice choice, net::EgressPolicy policy);

  Expected<std::shared_ptr<Exec>, Error> start_exec(const ExecStartParams& params, std::string exec_id);
  // Ends the sandbox: execs end with sandbox_destroyed, the machine is
  // stopped. `reason` goes into the sandbox.state events ("destroyed",
  // "lifetime", "idle", "shutdown"). `done` runs once it has ended.
  void destroy(const std::string& reason, std::function<void()> done);
  // A request about this sandbox: restarts the idle timer.
  void touch();
  // Work that is not an exec (a file transfer): while any token is held the
  // sandbox is not idle.
  std::shared_ptr<void> busy_token();

  void subscribe(const std::shared_ptr<SandboxSink>& sink);
  void unsubscribe(const SandboxSink* sink);

  const std::string& id() const { return settings_.id; }
  const std::string& owner() const { return settings_.owner; }
  const std::optional<std::string>& key() const { return settings_.key; }
  const Labels& labels() const { return settings_.labels; }
  State state() const { return state_; }
  bool live() const { return state_ == State::kReady; }
  // Not yet ended: booting or ready.
  bool active() const { return state_ == State::kBooting || state_ == State::kReady; }
  SandboxInfo info() const;
  // The machine's guest agent while the sandbox is live, else null.
  std::shared_ptr<agent::GuestAgent> agent() const { return live() && machine_ ? machine_->agent() : nullptr; }
  // What mounts file systems in the guest while the sandbox is live, else null.
  std::shared_ptr<vfs::FsServer> mounts() const { return live() && machine_ ? machine_->mounts() : nullptr; }

 private:
  void arm_idle_timer();
  void on_machine_exit(const vm::MachineExit& exit);
  // The one way a sandbox ends (destroy, crash, failed boot).
  void end(State final_state, const std::string& reason, const std::string& detail);
  void ended();
  void set_state(State state, const std::string& reason, const std::string& detail);
  void broadcast_state(const SandboxStateEvent& event);
  // A flow its network reported: to the subscribers, within the rate bound.
  void on_flow(const net::FlowAudit& flow);
  void fail_ready_waiters(const Error& error);

  boost::asio::io_context& io_;
  SandboxSettings settings_;
  vm::MachinePtr machine_;
  bool from_pool_ = false;
  std::int64_t boot_ms_ = 0;
  State state_ = State::kBooting;
  State final_state_ = State::kExited;
  std::string end_reason_;
  std::string end_detail_;
  std::map<std::string, std::shared_ptr<Exec>> running_;
  std::shared_ptr<unsigned> busy_ = std::make_shared<unsigned>(0);
  std::vector<std::pair<std::weak_ptr<SandboxSink>, const SandboxSink*>> subscribers_;
  std::chrono::system_clock::time_point created_;
  boost::asio::steady_timer lifetime_timer_;
  boost::asio::steady_timer idle_timer_;
  std::function<void(Sandbox&)> on_ended_;
  std::vector<Ready> ready_waiters_;
  std::vector<std::function<void()>> destroy_waiters_;
  double net_event_tokens_ = kNetEventBurst;
  std::chrono::steady_clock::time_point net_event_refill_ = std::chrono::steady_clock::now();
  std::uint64_t net_events_unreported_ = 0;
};

}  // namespace sandboxd::session
