#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <set>

#include "clients/sandboxctl/exec_stream.hpp"
#include "protocol/ws/binary_frame.hpp"

using namespace sandboxd::ctl;
using namespace std::chrono_literals;

namespace {

boost::json::object event(const char* text) { return boost::json::parse(text).as_object(); }

ExecExit exit_of(const char* text) { return exit_from_json(event(text)); }

}  // namespace

TEST_CASE("exit statuses follow the shell's conventions") {
  CHECK(exit_status(exit_of(R"({"reason":"exited","exit_code":0,"signal":null})")) == 0);
  CHECK(exit_status(exit_of(R"({"reason":"exited","exit_code":3,"signal":null})")) == 3);
  CHECK(exit_status(exit_of(R"({"reason":"signaled","exit_code":null,"signal":15})")) == 143);
  CHECK(exit_status(exit_of(R"({"reason":"timeout","exit_code":null,"signal":9})")) == 137);
  CHECK(exit_status(exit_of(R"({"reason":"timeout","exit_code":null,"signal":null})")) == 137);
  CHECK(exit_status(exit_of(R"({"reason":"killed","exit_code":null,"signal":9})")) == 137);
  CHECK(exit_status(exit_of(R"({"reason":"start_failed","exit_code":127,"message":"sh: nope: not found"})")) == 127);
  CHECK(exit_status(exit_of(R"({"reason":"start_failed","exit_code":126})")) == 126);
  CHECK(exit_status(exit_of(R"({"reason":"start_failed"})")) == 127);
  CHECK(exit_status(exit_of(R"({"reason":"sandbox_destroyed","exit_code":null,"signal":null})")) == 255);
  CHECK(exit_status(exit_of(R"({"reason":"sandbox_crashed"})")) == 255);
  CHECK(exit_status(exit_of(R"({"reason":"something_new"})")) == 255);
  CHECK(exit_status(exit_of(R"({"reason":"exited","exit_code":"0"})")) == 255);
  CHECK(exit_status(exit_of(R"({"reason":"exited","exit_code":300})")) == 255);
}

TEST_CASE("notices say why an exec ended when its status does not") {
  CHECK(exit_notice(exit_of(R"({"reason":"exited","exit_code":1,"message":""})"), std::nullopt).empty());
  CHECK(exit_notice(exit_of(R"({"reason":"signaled","signal":9,"message":""})"), std::nullopt).empty());
  CHECK(exit_notice(exit_of(R"({"reason":"start_failed","message":"no such file: frob"})"), std::nullopt) ==
        "no such file: frob");
  CHECK(exit_notice(exit_of(R"({"reason":"timeout","signal":9,"message":""})"), 1500) ==
        "the command timed out after 1500 ms");
  CHECK(exit_notice(exit_of(R"({"reason":"sandbox_destroyed","message":""})"), std::nullopt) ==
        "the sandbox was destroyed");
  CHECK(exit_notice(exit_of(R"({"reason":"sandbox_destroyed","message":"sandbox sb-1 was destroyed"})"), std::nullopt) ==
        "sandbox sb-1 was destroyed");
  CHECK(exit_notice(exit_of(R"({"reason":"sandbox_crashed","message":"qemu exited 1"})"), std::nullopt) ==
        "the sandbox crashed: qemu exited 1");
}

TEST_CASE("a resumed stream writes every output entry once") {
  ExecProgress progress("e1");
  CHECK(progress.last_seq() == 0);
  CHECK(progress.take_event(event(R"({"type":"event","event":"exec.started","exec":"e1","seq":1,"pid":9})")) ==
        ExecProgress::Event::kStarted);
  CHECK(progress.take_output("e1", 2));
  CHECK(progress.take_output("e1", 3));
  CHECK(progress.last_seq() == 3);

  // The connection drops; attaching after 3 replays from 4, but a daemon may
  // also send older entries again: they are skipped.
  CHECK_FALSE(progress.take_output("e1", 2));
  CHECK_FALSE(progress.take_output("e1", 3));
  CHECK_FALSE(progress.take_event(event(R"({"type":"event","event":"exec.started","exec":"e1","seq":1})")) !=
              ExecProgress::Event::kIgnored);
  CHECK(progress.take_output("e1", 4));
  CHECK_FALSE(progress.take_output("other", 5));
  CHECK(progress.take_event(event(R"({"type":"event","event":"exec.timed_out","exec":"e1","seq":5,"timeout_ms":100})")) ==
        ExecProgress::Event::kTimedOut);
  CHECK(progress.timeout_ms() == 100);
  CHECK_FALSE(progress.finished());
  CHECK(progress.take_event(event(R"({"type":"event","event":"exec.exit","exec":"e1","sandbox":"sb-1","seq":6,
                                      "reason":"timeout","exit_code":null,"signal":9,"message":""})")) ==
        ExecProgress::Event::kExit);
  REQUIRE(progress.finished());
  CHECK(exit_status(*progress.exit()) == 137);
  CHECK(progress.exit_event().at("sandbox").as_string() == "sb-1");
  // exec.exit is the last entry: nothing after it counts.
  CHECK_FALSE(progress.take_output("e1", 7));
  CHECK(progress.take_event(event(R"({"type":"event","event":"exec.exit","exec":"e1","seq":6,"reason":"exited"})")) ==
        ExecProgress::Event::kIgnored);
}

TEST_CASE("events of other execs, unknown events and events without seq are ignored") {
  ExecProgress progress("e1", 10);
  CHECK(progress.last_seq() == 10);
  CHECK(progress.take_event(event(R"({"event":"exec.exit","exec":"e2","seq":11,"reason":"exited"})")) ==
        ExecProgress::Event::kIgnored);
  CHECK(progress.take_event(event(R"({"event":"sandbox.state","sandbox":"sb-1","state":"exited"})")) ==
        ExecProgress::Event::kIgnored);
  CHECK(progress.take_event(event(R"({"event":"exec.exit","exec":"e1","reason":"exited"})")) ==
        ExecProgress::Event::kIgnored);
  CHECK(progress.take_event(event(R"({"event":"exec.exit","exec":"e1","seq":-1,"reason":"exited"})")) ==
        ExecProgress::Event::kIgnored);
  CHECK_FALSE(progress.finished());
  CHECK_FALSE(progress.take_output("e1", 10));
  CHECK(progress.take_output("e1", 11));
}

TEST_CASE("a truncated log moves the resume point forward, never back") {
  ExecProgress progress("e1", 5);
  progress.skip_before(100);
  CHECK(progress.last_seq() == 99);
  progress.skip_before(50);
  CHECK(progress.last_seq() == 99);
  CHECK(progress.take_output("e1", 100));
}

TEST_CASE("reconnect waits double up to a cap and stop at the budget") {
  ReconnectBackoff backoff(30s, 100ms, 2s);
  std::vector<std::chrono::milliseconds> waits;
  std::chrono::milliseconds elapsed(0);
  while (auto wait = backoff.next(elapsed)) {
    waits.push_back(*wait);
    elapsed += *wait;
  }
  REQUIRE(waits.size() >= 5);
  CHECK(waits[0] == 100ms);
  CHECK(waits[1] == 200ms);
  CHECK(waits[2] == 400ms);
  CHECK(waits[4] == 1600ms);
  CHECK(waits[5] == 2s);
  CHECK(elapsed == 30s);  // the last wait is cut to end with the budget
  backoff.reset();
  CHECK(backoff.next(0ms) == 100ms);
}

TEST_CASE("generated exec ids are valid and differ") {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    auto id = generate_exec_id();
    CHECK(sandboxd::protocol::ws::valid_exec_id(id));
    ids.insert(id);
  }
  CHECK(ids.size() == 100);
}
