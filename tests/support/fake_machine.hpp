// Machines that boot nothing, for testing what sits above them — sandboxes,
// execs, the sandbox service and the pool — in one process, in milliseconds.
//
// A FakeMachine's guest agent is the daemon's real GuestAgent, talking the
// real protocol over a socketpair to a FakeGuest: a scripted agent on the
// same io_context that runs a few pretend programs (below). Tests drive the
// rest: crash a machine as if QEMU died, take its guest away, hold creations
// back to see a sandbox booting, make boots fail.
//
// Programs the FakeGuest runs, by argv[0]:
//   echo ARGS...   prints ARGS joined by blanks and a newline, exits 0
//   exit N         exits with status N
//   cat            copies stdin to stdout until end of stdin, exits 0
//   sleep          runs until signalled, then dies of that signal
//   emit N         writes N bytes to stdout within the output window, exits 0
//   missing        cannot be started: start_failed with status 127
//   mute           never answers the start
#pragma once

#include <boost/asio/io_context.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/agent/agent_channel.hpp"
#include "daemon/agent/guest_agent.hpp"
#include "daemon/vm/machine.hpp"
#include "daemon/vm/machine_factory.hpp"
#include "daemon/vm/machine_pool.hpp"
#include "run_until.hpp"

namespace sandboxd::testing {

class FakeGuest : public std::enable_shared_from_this<FakeGuest> {
 public:
  FakeGuest(boost::asio::io_context& io, int fd);
  void start();
  // The guest goes away: its end of the channel closes.
  void close();

  // What the host asked of it.
  std::vector<protocol::ExecStart> starts;
  std::vector<protocol::Signal> signals;
  std::map<std::uint32_t, std::string> stdin_seen;

 private:
  struct Program {
    std::string name;
    std::uint64_t to_emit = 0;     // emit: bytes still to write
    std::uint32_t unacked = 0;     // output the host has not acknowledged
    bool stdin_eof = false;
  };
  void on_message(protocol::Message&& m);
  void exec_start(const protocol::ExecStart& start);
  void emit_more(std::uint32_t id);
  void exit(std::uint32_t id, protocol::ExitKind kind, std::int32_t status);

  std::shared_ptr<agent::AgentChannel> channel_;
  std::map<std::uint32_t, Program> running_;
  std::uint32_t next_pid_ = 100;
};

// What a test sees of the machines it was given.
struct MachineLedger {
  unsigned created = 0;
  unsigned live = 0;     // not yet destroyed
  unsigned stopped = 0;  // stop() called
  std::vector<net::NetworkAssignment> assignments;
  std::vector<net::EgressPolicy> replaced_policies;  // set_egress_policy, in order
};

class FakeMachine final : public vm::Machine {
 public:
  FakeMachine(boost::asio::io_context& io, std::shared_ptr<MachineLedger> ledger);
  ~FakeMachine() override;

  std::shared_ptr<agent::GuestAgent> agent() const override { return agent_; }
  std::chrono::microseconds boot_time() const override { return std::chrono::milliseconds(7); }
  void on_exit(std::function<void(const vm::MachineExit&)> handler) override { exit_handler_ = std::move(handler); }
  void assign(net::NetworkAssignment assignment) override { ledger_->assignments.push_back(std::move(assignment)); }
  void set_egress_policy(net::EgressPolicy policy) override {
    ledger_->replaced_policies.push_back(std::move(policy));
  }
  void stop(std::function<void()> gone) override;
  std::string network_stats() const override { return {}; }

  // As if QEMU died: the guest's channel closes and the machine reports it.
  void crash(std::string report);
  FakeGuest& guest() { return *guest_; }
  bool stopped() const { return stopped_; }

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<MachineLedger> ledger_;
  std::shared_ptr<FakeGuest> guest_;
  std::shared_ptr<agent::GuestAgent> agent_;
  std::function<void(const vm::MachineExit&)> exit_handler_;
  bool stopped_ = false;
};

// Hands out FakeMachines; creations may be held back or made to fail.
class FakeFactory final : public vm::MachineFactory {
 public:
  explicit FakeFactory(boost::asio::io_context& io) : io_(io) {}
  void create(const vm::MachineShape& shape, Created done) override;

  // From now on creations wait until release_held() (or fail, with `failing`).
  bool hold = false;
  std::string failing;  // non-empty: every creation fails with this message
  void release_held();
  std::vector<vm::MachineShape> asked;
  std::shared_ptr<MachineLedger> ledger = std::make_shared<MachineLedger>();
  // The machines handed out, for tests that crash one.
  std::vector<FakeMachine*> handed_out;
  std::size_t held() const { return held_.size(); }

 private:
  void deliver(Created done);
  boost::asio::io_context& io_;
  std::deque<Created> held_;
};

// A MachinePool without inventory: every acquire is a creation of the
// factory, reported as not from the pool.
class FakePool final : public vm::MachinePool {
 public:
  explicit FakePool(FakeFactory& factory) : factory_(factory) {}
  void keep_warm(const vm::MachineShape& shape) override { warm.push_back(shape); }
  void acquire(const vm::MachineShape& shape, Acquired done) override;
  void stop(std::function<void()> done) override;
  std::vector<vm::MachineShape> warm;
  bool stopped = false;

 private:
  FakeFactory& factory_;
};

}  // namespace sandboxd::testing
