// Exec against a fake guest: its log, its one exec.exit, its controls.
#include <catch2/catch.hpp>

#include <signal.h>

#include "session_world.hpp"

using namespace sandboxd;
using namespace sandboxd::session;
using namespace sandboxd::testing;


TEST_CASE("exec: output and exit arrive in order, numbered from 1, and exec.exit is the last entry") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto exec = *sandbox->start_exec(exec_params({"echo", "hello", "world"}), "e1");
  auto sink = attach_sink(exec);
  REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
  w.settle();
  REQUIRE(sink->entries.size() == 3);
  CHECK(sink->entries[0]->message == "exec.started e1 1 pid=100");
  CHECK(sink->entries[1]->message == "out e1 2 stdout hello world\n");
  CHECK(sink->entries[2]->message == "exec.exit e1 3 reason=exited code=0 signal=- sandbox_reason=-");
  CHECK(exec->info().exit->reason == "exited");
  CHECK(exec->info().pid == 100);
}

TEST_CASE("exec: a program that cannot be started ends with start_failed and no exec.started") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto exec = *sandbox->start_exec(exec_params({"missing"}), "e1");
  auto sink = attach_sink(exec);
  REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
  CHECK(sink->lines() == std::vector<std::string>{"exec.exit e1 1 reason=start_failed code=127 signal=- sandbox_reason=-"});
}

TEST_CASE("exec: a timeout logs exec.timed_out, kills the process group and ends with reason timeout") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto params = exec_params({"sleep"});
  params.timeout_ms = 30;
  auto exec = *sandbox->start_exec(params, "e1");
  auto sink = attach_sink(exec);
  REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
  auto& guest = w.factory.handed_out.back()->guest();
  REQUIRE(guest.signals.size() == 1);
  CHECK(guest.signals[0].signo == SIGKILL);
  CHECK(sink->lines() == std::vector<std::string>{"exec.started e1 1 pid=100", "exec.timed_out e1 2",
                                                  "exec.exit e1 3 reason=timeout code=- signal=9 sandbox_reason=-"});
}

TEST_CASE("exec: exec.kill is reported as killed, another signal as signaled") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto killed = *sandbox->start_exec(exec_params({"sleep"}), "k");
  auto signalled = *sandbox->start_exec(exec_params({"sleep"}), "s");
  REQUIRE(w.run([&] { return killed->state() == ExecState::kRunning && signalled->state() == ExecState::kRunning; }));
  REQUIRE(killed->kill());
  REQUIRE(signalled->signal(SIGTERM));
  REQUIRE(w.run([&] { return killed->state() == ExecState::kExited && signalled->state() == ExecState::kExited; }));
  CHECK(killed->info().exit->reason == "killed");
  CHECK(signalled->info().exit->reason == "signaled");
  CHECK(*signalled->info().exit->signal == SIGTERM);
  // Controls of a finished exec: not_running.
  CHECK(killed->kill().error().code == ErrorCode::kNotRunning);
  CHECK(killed->signal(SIGINT).error().code == ErrorCode::kNotRunning);
}

TEST_CASE("exec: stdin reaches the process in order; after its end, not_running wins over stdin_closed") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto params = exec_params({"cat"});
  params.stdin_open = true;
  auto exec = *sandbox->start_exec(params, "e1");
  auto sink = attach_sink(exec);
  REQUIRE(exec->write_stdin(as_bytes("abc"), false));
  REQUIRE(exec->write_stdin(as_bytes("def"), true));
  REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
  w.settle();
  CHECK(sink->stdout_text() == "abcdef");
  CHECK(exec->write_stdin(as_bytes("x"), false).error().code == ErrorCode::kNotRunning);

  auto closed = *sandbox->start_exec(exec_params({"sleep"}), "e2");  // stdin never open
  CHECK(closed->write_stdin(as_bytes("x"), false).error().code == ErrorCode::kStdinClosed);
}

TEST_CASE("exec: resize needs a terminal (not_a_tty), and a finished exec is not_running first") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto exec = *sandbox->start_exec(exec_params({"sleep"}), "e1");
  CHECK(exec->resize(100, 40).error().code == ErrorCode::kNotATty);
  REQUIRE(exec->kill());
  REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
  CHECK(exec->resize(100, 40).error().code == ErrorCode::kNotRunning);
}

TEST_CASE("exec: a read-only attachment may watch but not control; a sink that is not attached is told so") {
  SessionWorld w;
  auto sandbox = w.ready_sandbox();
  auto exec = *sandbox->start_exec(exec_params({"sleep"}), "e1");
  auto writer = attach_sink(exec);
  auto watcher = attach_sink(exec, true);
  CHECK(exec->check_control(writer.get()));
  CHECK(exec->check_control(watcher.get()).error().code == ErrorCode::kReadOnly);
  RecordingSink stranger;
  auto refused = exec->check_control(&stranger);
  CHECK(refused.error().code == ErrorCode::kNotAttached);
  CHECK(refused.error().exec == "e1");
  REQUIRE(exec->kill());
  REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
  w.settle();
  CHECK(watcher->count("exec.exit") == 1);
  CHECK(writer->count("exec.exit") == 1);
}

TEST_CASE("exec: a full log holds the process back until the reader catches up, and nothing is lost") {
  SessionWorld w;
  auto settings = w.settings();
  settings.exec_log_bytes = 256 * 1024;
  auto sandbox = w.ready_sandbox(settings);
  auto exec = *sandbox->start_exec(exec_params({"emit", std::to_string(3 << 20)}), "e1");
  auto sink = std::make_shared<RecordingSink>();
  sink->room = false;
  REQUIRE(exec->attach(sink, 0, false));
  w.settle();
  // The log is full and nobody reads: no acknowledgement, so the guest stops.
  CHECK(exec->state() == ExecState::kRunning);
  w.settle();
  CHECK(exec->state() == ExecState::kRunning);
  sink->room = true;
  REQUIRE(w.run([&] {
    exec->pump();
    return exec->state() == ExecState::kExited;
  }));
  exec->pump();
  std::size_t bytes = 0;
  for (const auto& e : sink->entries) bytes += e->output_bytes;
  CHECK(bytes == (3u << 20));
  CHECK(sink->count("exec.exit") == 1);
}

TEST_CASE("exec: an attach from before the oldest entry kept is log_truncated, naming first_seq") {
  SessionWorld w;
  auto settings = w.settings();
  settings.exec_log_bytes = 128 * 1024;
  auto sandbox = w.ready_sandbox(settings);
  auto exec = *sandbox->start_exec(exec_params({"emit", std::to_string(1 << 20)}), "e1");
  auto reader = attach_sink(exec);
  REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
  REQUIRE(exec->first_seq() > 1);
  auto late = std::make_shared<RecordingSink>();
  auto refused = exec->attach(late, 0, false);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::kLogTruncated);
  CHECK(*refused.error().first_seq == exec->first_seq());
  // From what is still there, the replay is whole.
  REQUIRE(exec->attach(late, exec->first_seq() - 1, true));
  CHECK(late->entries.front()->seq == exec->first_seq());
  CHECK(late->entries.back()->message.rfind("exec.exit", 0) == 0);
}
