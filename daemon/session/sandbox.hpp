// One sandbox: a booted VM (with its network) handed to one owner, the execs
// running in it, its lifetime and idle timers, and its state events.
//
// States: ready -> stopping -> exited, or ready -> crashed when QEMU or the
// guest agent goes away on its own. Whatever ends the sandbox ends every exec
// in it with an exec.exit, and releases the VM, its network and its runtime
// record before the end is reported.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/api/requests.hpp"
#include "daemon/session/exec.hpp"
#include "daemon/session/exec_sink.hpp"
#include "daemon/vm/warm_vm.hpp"

namespace sandboxd::session {

struct SandboxSettings {
  std::string id;
  std::string owner;
  std::string image;
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  std::vector<std::string> env;  // NAME=value, for every exec
  api::Labels labels;
  std::uint32_t lifetime_s = 0;      // 0: none
  std::uint32_t idle_timeout_s = 0;  // 0: none
  std::string egress;
  std::size_t exec_log_bytes = 16u << 20;
};

class Sandbox : public std::enable_shared_from_this<Sandbox> {
 public:
  enum class State { kReady, kStopping, kExited, kCrashed };
  static constexpr std::size_t kMaxRunningExecs = 64;

  Sandbox(boost::asio::io_context& io, SandboxSettings settings, vm::WarmVm machine, bool from_pool);
  ~Sandbox();

  // Starts timers and the watch on the VM. `on_ended` runs once, after the
  // sandbox reached exited or crashed and released its VM.
  void begin(std::function<void(Sandbox&)> on_ended);

  Expected<std::shared_ptr<Exec>, api::ApiError> start_exec(const api::ExecStartParams& params, std::string exec_id);
  // Ends the sandbox: execs end with sandbox_destroyed, the VM is killed.
  // `reason` goes into the sandbox.state event ("destroyed", "lifetime", ...).
  void destroy(const std::string& reason, std::function<void()> done);
  // A request about this sandbox: restarts the idle timer.
  void touch();

  void subscribe(const std::shared_ptr<SandboxSink>& sink);
  void unsubscribe(const SandboxSink* sink);

  const std::string& id() const { return settings_.id; }
  const std::string& owner() const { return settings_.owner; }
  const api::Labels& labels() const { return settings_.labels; }
  State state() const { return state_; }
  bool live() const { return state_ == State::kReady; }
  boost::json::object info() const;

 private:
  void arm_idle_timer();
  void on_vm_exit(const std::string& report);
  void end_execs(EndCause cause, const std::string& message);
  void set_state(State state, const std::string& reason, const std::string& detail);
  void broadcast(std::shared_ptr<const std::string> event);
  void release(std::function<void()> done);

  boost::asio::io_context& io_;
  SandboxSettings settings_;
  vm::WarmVm machine_;
  bool from_pool_;
  std::int64_t boot_ms_ = 0;
  State state_ = State::kReady;
  std::map<std::string, std::shared_ptr<Exec>> running_;
  std::vector<std::pair<std::weak_ptr<SandboxSink>, const SandboxSink*>> subscribers_;
  std::chrono::system_clock::time_point created_;
  boost::asio::steady_timer lifetime_timer_;
  boost::asio::steady_timer idle_timer_;
  std::function<void(Sandbox&)> on_ended_;
  std::vector<std::function<void()>> destroy_waiters_;
};

const char* to_string(Sandbox::State state);

}  // namespace sandboxd::session
