// Sandbox against fake machines: its states, its one way to end, and what
// every exec in it hears of that end.
#include <catch2/catch.hpp>

#include "session_world.hpp"

using namespace sandboxd;
using namespace sandboxd::session;
using namespace sandboxd::testing;


TEST_CASE("sandbox: destroy ends every running exec with exactly one exec.exit and stops the machine") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto subscriber = std::make_shared<RecordingSink>();
  sandbox->subscribe(subscriber);
  auto a = *sandbox->start_exec(exec_params({"sleep"}), "a");
  auto b = *sandbox->start_exec(exec_params({"sleep"}), "b");
  auto sink_a = attach_sink(a, true);
  auto sink_b = attach_sink(b, true);
  REQUIRE(w.run([&] { return a->state() == ExecState::kRunning && b->state() == ExecState::kRunning; }));
  bool destroyed = false;
  sandbox->destroy("destroyed", [&] { destroyed = true; });
  REQUIRE(w.run([&] { return destroyed; }));
  w.settle();
  for (auto* sink : {sink_a.get(), sink_b.get()}) {
    REQUIRE(sink->count("exec.exit") == 1);
    CHECK(sink->lines("exec.exit").front().find("reason=sandbox_destroyed") != std::string::npos);
    CHECK(sink->lines("exec.exit").front().find("sandbox_reason=destroyed") != std::string::npos);
  }
  CHECK(sandbox->state() == SandboxState::kExited);
  CHECK(w.factory.ledger->stopped == 1);
  REQUIRE(subscriber->states.size() == 2);
  CHECK(subscriber->states[0].state == SandboxState::kStopping);
  CHECK(subscriber->states[0].reason == "destroyed");
  CHECK(subscriber->states[1].state == SandboxState::kExited);
  CHECK(subscriber->states[1].reason == "destroyed");
  CHECK(subscriber->states[1].detail.empty());
  // Subscribers heard of both starts and both exits, once each.
  CHECK(subscriber->exec_events.size() == 4);
  // A second destroy of an ended sandbox answers at once.
  bool again = false;
  sandbox->destroy("destroyed", [&] { again = true; });
  CHECK(again);
}

TEST_CASE("sandbox: a machine that dies ends every exec once with sandbox_crashed and reports crashed, qemu_exited") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto subscriber = std::make_shared<RecordingSink>();
  sandbox->subscribe(subscriber);
  auto exec = *sandbox->start_exec(exec_params({"sleep"}), "e1");
  auto sink = attach_sink(exec, true);
  REQUIRE(w.run([&] { return exec->state() == ExecState::kRunning; }));
  w.factory.handed_out.back()->crash("QEMU killed by signal 9; console tail: Out of memory: Killed process 1");
  REQUIRE(w.run([&] { return sandbox->state() == SandboxState::kCrashed && subscriber->saw_state(SandboxState::kCrashed); }));
  w.settle();
  REQUIRE(sink->count("exec.exit") == 1);
  CHECK(sink->lines("exec.exit").front().find("reason=sandbox_crashed") != std::string::npos);
  REQUIRE(subscriber->states.size() == 1);  // no "stopping" for a crash
  CHECK(subscriber->states[0].reason == "qemu_exited");
  CHECK(subscriber->states[0].detail.find("OOM killer") != std::string::npos);
}

TEST_CASE("sandbox: a guest agent that goes away ends its execs once, even when the machine's crash follows") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto exec = *sandbox->start_exec(exec_params({"sleep"}), "e1");
  auto sink = attach_sink(exec, true);
  REQUIRE(w.run([&] { return exec->state() == ExecState::kRunning; }));
  w.factory.handed_out.back()->guest().close();
  REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
  w.factory.handed_out.back()->crash("QEMU exit status 1");
  REQUIRE(w.run([&] { return sandbox->state() == SandboxState::kCrashed; }));
  w.settle();
  CHECK(sink->count("exec.exit") == 1);
  CHECK(sink->lines("exec.exit").front().find("reason=sandbox_crashed") != std::string::npos);
}

TEST_CASE("sandbox: its lifetime ends it with reason lifetime, and its execs say so") {
  SessionWorld w;
  auto settings = w.settings();
  settings.lifetime_s = 1;
  auto sandbox = w.ready_sandbox(settings);
  auto exec = *sandbox->start_exec(exec_params({"sleep"}), "e1");
  auto sink = attach_sink(exec, true);
  REQUIRE(w.run([&] { return sandbox->state() == SandboxState::kExited; }, std::chrono::seconds(5)));
  w.settle();
  CHECK(sink->lines("exec.exit").front().find("sandbox_reason=lifetime") != std::string::npos);
  REQUIRE(sandbox->info().expires_at);
}

TEST_CASE("sandbox: the idle timeout waits while an exec runs and ends the sandbox once none does") {
  SessionWorld w;
  auto settings = w.settings();
  settings.idle_timeout_s = 1;
  auto sandbox = w.ready_sandbox(settings);
  auto exec = *sandbox->start_exec(exec_params({"sleep"}), "e1");
  // Past the idle timeout, the running exec keeps the sandbox.
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  w.run([&] { return std::chrono::steady_clock::now() >= until; }, std::chrono::seconds(3));
  CHECK(sandbox->live());
  REQUIRE(exec->kill());
  auto subscriber = std::make_shared<RecordingSink>();
  sandbox->subscribe(subscriber);
  REQUIRE(w.run([&] { return sandbox->state() == SandboxState::kExited; }, std::chrono::seconds(5)));
  CHECK(subscriber->states.back().reason == "idle");
}

TEST_CASE("sandbox: a 65th running exec is limit_exceeded naming max_execs_per_sandbox") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  for (std::size_t i = 0; i < Sandbox::kMaxRunningExecs; ++i)
    REQUIRE(sandbox->start_exec(exec_params({"sleep"}), "e" + std::to_string(i)));
  auto refused = sandbox->start_exec(exec_params({"sleep"}), "one-more");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::kLimitExceeded);
  CHECK(refused.error().limit == "max_execs_per_sandbox");
}

TEST_CASE("sandbox: an exec in a booting or ended sandbox is not_ready, naming the state") {
  SessionWorld w;
  auto sandbox = std::make_shared<Sandbox>(w.io, w.settings());
  sandbox->begin([](Sandbox&) {});
  auto booting = sandbox->start_exec(exec_params({"true"}), "e1");
  REQUIRE_FALSE(booting);
  CHECK(booting.error().code == ErrorCode::kNotReady);
  CHECK(booting.error().state == "booting");
  sandbox->destroy("destroyed", nullptr);
  CHECK(sandbox->start_exec(exec_params({"true"}), "e2").error().state == "exited");
}

TEST_CASE("sandbox: destroyed while booting, it ends at once, its waiters fail, and the late machine is stopped") {
  SessionWorld w;
  auto sandbox = std::make_shared<Sandbox>(w.io, w.settings());
  sandbox->begin([](Sandbox&) {});
  std::optional<Error> waiter_error;
  sandbox->when_ready([&](Expected<std::shared_ptr<Sandbox>, Error> r) {
    REQUIRE_FALSE(r);
    waiter_error = r.error();
  });
  sandbox->destroy("destroyed", nullptr);
  CHECK(sandbox->state() == SandboxState::kExited);
  REQUIRE(waiter_error);
  CHECK(waiter_error->code == ErrorCode::kUnavailable);
  w.factory.create({"default", 1, 256}, [sandbox](Expected<vm::MachinePtr, std::string> m) {
    sandbox->machine_arrived(std::move(m), false, deny_all_policy());
  });
  REQUIRE(w.run([&] { return w.factory.ledger->stopped == 1; }));
  CHECK(sandbox->state() == SandboxState::kExited);
}

TEST_CASE("sandbox: a failed boot ends it with boot_failed and the reason") {
  SessionWorld w;
  auto sandbox = std::make_shared<Sandbox>(w.io, w.settings());
  auto subscriber = std::make_shared<RecordingSink>();
  sandbox->subscribe(subscriber);
  sandbox->begin([](Sandbox&) {});
  std::optional<Error> waiter_error;
  sandbox->when_ready([&](Expected<std::shared_ptr<Sandbox>, Error> r) { waiter_error = r.error(); });
  sandbox->machine_arrived(Unexpected{std::string("QEMU exited before the guest agent answered")}, false,
                           deny_all_policy());
  CHECK(sandbox->state() == SandboxState::kExited);
  REQUIRE(waiter_error);
  CHECK(waiter_error->code == ErrorCode::kUnavailable);
  CHECK(waiter_error->message.find("QEMU exited") != std::string::npos);
  REQUIRE(subscriber->states.size() == 1);
  CHECK(subscriber->states[0].reason == "boot_failed");
}

TEST_CASE("sandbox: the flows its network reports reach its subscribers as net.flow, within a rate bound") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox(w.settings("sb-9"));
  REQUIRE(w.factory.ledger->assignments.size() == 1);
  const auto& audit = w.factory.ledger->assignments[0].audit;
  REQUIRE(audit);
  net::FlowAudit flow;
  flow.sandbox_id = "sb-9";
  flow.key = net::FlowKey{net::wire::Ipv4Address{{10, 0, 2, 15}}, 40000, net::wire::Ipv4Address{{10, 0, 2, 100}}, 80};
  flow.name = "allowed.test";
  flow.verdict = net::FlowVerdict::kAllowed;
  flow.reason = "rule 0 allows";
  audit(flow);  // no subscriber yet: nothing to tell
  auto sink = std::make_shared<RecordingSink>();
  sandbox->subscribe(sink);
  audit(flow);
  REQUIRE(w.run([&] { return sink->flows.size() == 1; }));
  CHECK(sink->flows[0].sandbox == "sb-9");
  CHECK(sink->flows[0].flow.name == "allowed.test");
  CHECK(sink->flows[0].flow.reason == "rule 0 allows");
  CHECK(sink->flows[0].unreported_before == 0);
  // A guest opening flows as fast as it can is reported in part.
  for (int i = 0; i < 1000; ++i) audit(flow);
  w.settle();
  CHECK(sink->flows.size() > 100);
  CHECK(sink->flows.size() < 1 + 300);
  sandbox->unsubscribe(sink.get());
  auto before = sink->flows.size();
  audit(flow);
  w.settle();
  CHECK(sink->flows.size() == before);
}

TEST_CASE("sandbox: its machine is given the sandbox's identity and policy when it arrives") {
  SessionWorld w;
  auto settings = w.settings("sb-77");
  settings.owner = "owner-x";
  auto sandbox = w.ready_sandbox(settings);
  REQUIRE(w.factory.ledger->assignments.size() == 1);
  CHECK(w.factory.ledger->assignments[0].sandbox_id == "sb-77");
  CHECK(w.factory.ledger->assignments[0].owner == "owner-x");
  CHECK(w.factory.ledger->assignments[0].policy.rules() == policy::NetworkPolicy::deny_all());
  CHECK(sandbox->info().boot_ms == 7);
  CHECK(sandbox->info().from_pool);
}
