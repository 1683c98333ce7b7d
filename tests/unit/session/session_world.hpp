// A sandbox service's world without VMs, for the session tests: one
// io_context, a fake machine factory, the text log format, and helpers that
// run the loop until a condition holds.
#pragma once

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <memory>

#include "daemon/session/sandbox.hpp"
#include "fake_machine.hpp"
#include "recording_sink.hpp"

namespace sandboxd::testing {

inline net::EgressPolicy deny_all_policy() {
  return *net::EgressPolicy::make(policy::NetworkPolicy::deny_all(), {}, net::wire::Ipv4Address{{10, 0, 2, 100}}, {});
}

struct SessionWorld {
  boost::asio::io_context io;
  FakeFactory factory{io};
  TextLogFormat format;

  session::SandboxSettings settings(std::string id = "sb-1") {
    session::SandboxSettings s;
    s.id = std::move(id);
    s.owner = "owner-a";
    s.image = "default";
    s.log_format = &format;
    return s;
  }

  // A sandbox with a fake machine, ready.
  std::shared_ptr<session::Sandbox> ready_sandbox(session::SandboxSettings s) {
    auto sandbox = std::make_shared<session::Sandbox>(io, std::move(s));
    sandbox->begin([](session::Sandbox&) {});
    factory.create({"default", 1, 256}, [sandbox](Expected<vm::MachinePtr, std::string> m) {
      sandbox->machine_arrived(std::move(m), true, deny_all_policy());
    });
    REQUIRE(run([&] { return sandbox->live(); }));
    return sandbox;
  }
  std::shared_ptr<session::Sandbox> ready_sandbox() { return ready_sandbox(settings()); }

  bool run(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    return run_until(io, done, limit);
  }
  // Lets whatever is already due happen (posted handlers, socket traffic).
  void settle() { run_until(io, [] { return false; }, std::chrono::milliseconds(50)); }
};

// A sink attached to `exec` from its first entry.
inline std::shared_ptr<RecordingSink> attach_sink(const std::shared_ptr<session::Exec>& exec, bool read_only = false) {
  auto sink = std::make_shared<RecordingSink>();
  REQUIRE(exec->attach(sink, 0, read_only));
  return sink;
}

inline session::ExecStartParams exec_params(std::vector<std::string> argv, std::string sandbox = "sb-1") {
  session::ExecStartParams p;
  p.sandbox = std::move(sandbox);
  p.argv = std::move(argv);
  return p;
}

}  // namespace sandboxd::testing
