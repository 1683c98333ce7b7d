// The VM layer driven directly: one booted guest, many execs at once, hostile
// bytes from the host side, clean power-off.
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <map>

#include "booted_vm.hpp"
#include "protocol/codec.hpp"

using namespace sandboxd;
using namespace sandboxd::testing;
namespace asio = boost::asio;

namespace {

// An exec on a pseudo-terminal, started through the host's proxy with stdin
// open; its output and exit land in `outcome`.
struct PtyExec {
  ExecOutcome outcome;
  std::uint32_t id = 0;
};
void start_pty(BootedVm& t, PtyExec& p, std::vector<std::string> argv, protocol::Terminal size) {
  agent::ExecRequest request;
  request.argv = std::move(argv);
  request.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=vt100"};
  request.stdin_open = true;
  request.pty = size;
  auto& agent = t.vm().agent();
  p.id = agent.start_exec(
      request, {
                   .on_started = [](std::uint32_t) {},
                   .on_output =
                       [&p, &agent](protocol::Stream s, Bytes&& data) {
                         (s == protocol::Stream::kStdout ? p.outcome.out : p.outcome.err) += as_chars(data);
                         agent.ack_output(p.id, static_cast<std::uint32_t>(data.size()));
                       },
                   .on_stdin_credit = [] {},
                   .on_exit = [&p](const protocol::Exit& e) { p.outcome.exit = e; },
                   .on_failed = [&p](const std::string& why) { p.outcome.failure = why; },
               });
}
void type(BootedVm& t, const PtyExec& p, std::string_view keys) {
  REQUIRE(t.vm().agent().write_stdin(p.id, as_bytes(keys), false) == keys.size());
}

}  // namespace


TEST_CASE("vm: ten execs at once keep their outputs apart") {
  BootedVm t;
  std::vector<ExecOutcome> outcomes(10);
  for (int i = 0; i < 10; ++i) {
    // Each writes its own marker many times, interleaved in time with the others.
    std::string script = "i=0; while [ $i -lt 200 ]; do echo exec-" + std::to_string(i) +
                         "-line-$i; i=$((i+1)); done; exit " + std::to_string(i);
    t.start(outcomes[static_cast<std::size_t>(i)], {"sh", "-c", script});
  }
  REQUIRE(t.run_until([&] {
    for (auto& o : outcomes)
      if (!o.done()) return false;
    return true;
  }));
  for (int i = 0; i < 10; ++i) {
    auto& o = outcomes[static_cast<std::size_t>(i)];
    INFO("exec " << i << " failure: " << o.failure);
    REQUIRE(o.exit.has_value());
    CHECK(o.exit->status == i);
    std::string expected;
    for (int line = 0; line < 200; ++line) expected += "exec-" + std::to_string(i) + "-line-" + std::to_string(line) + "\n";
    CHECK(o.out == expected);
  }
}

TEST_CASE("vm: garbage and oversized frames from the host get errors, and the agent keeps serving") {
  BootedVm t;
  auto& channel = t.vm().agent().channel();
  // Raw garbage that parses as a frame of unknown version.
  channel.send_raw(Bytes{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{4}, std::byte{0x55}, std::byte{0x66},
                         std::byte{0x77}, std::byte{0x88}});
  // A well-framed message with a truncated body.
  Bytes truncated;
  ByteWriter w(truncated);
  w.u32(4);
  w.u8(protocol::kVersion);
  w.u8(static_cast<std::uint8_t>(protocol::MessageType::kExecStart));
  w.u16(0x0102);
  channel.send_raw(truncated);
  // A frame declaring 64 MiB, followed by that many bytes of junk in pieces.
  Bytes oversized;
  ByteWriter ow(oversized);
  std::uint32_t huge = 64u << 20;
  ow.u32(huge);
  channel.send_raw(oversized);
  for (std::uint32_t sent = 0; sent < huge; sent += 1u << 20) channel.send_raw(Bytes(1u << 20, std::byte{0xee}));

  auto outcome = t.run({"echo", "still here"});
  INFO(outcome.failure);
  REQUIRE(outcome.exit.has_value());
  CHECK(outcome.exit->status == 0);
  CHECK(outcome.out == "still here\n");
  CHECK(t.vm().agent().connected());
}

TEST_CASE("vm: a shutdown request powers the guest off on its own") {
  BootedVm t;
  bool down = false;
  auto start = std::chrono::steady_clock::now();
  // A generous grace: if the guest did not power off by itself, QEMU would be
  // killed at the end of it and report a signal instead of a clean exit.
  t.vm().shutdown(std::chrono::seconds(20), [&] { down = true; });
  REQUIRE(t.run_until([&] { return down; }));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  CHECK(t.vm().process().describe_exit() == "exit status 0");
}

TEST_CASE("vm: a pty exec has its terminal, follows resizes, and ^C interrupts it") {
  BootedVm t;
  REQUIRE(t.vm().agent().hello());
  const auto& caps = t.vm().agent().hello()->capabilities;
  CHECK(std::find(caps.begin(), caps.end(), "pty") != caps.end());

  PtyExec probe;
  start_pty(t, probe, {"sh", "-c", "stty size; test -t 0 && test -t 1 && test -t 2 && echo tty; echo $TERM"},
            {100, 30});
  REQUIRE(t.run_until([&] { return probe.outcome.done(); }));
  INFO(probe.outcome.failure);
  REQUIRE(probe.outcome.exit);
  CHECK(probe.outcome.exit->status == 0);
  CHECK(probe.outcome.out == "30 100\r\ntty\r\nvt100\r\n");
  CHECK(probe.outcome.err.empty());

  // An interactive shell, typed to after a resize.
  PtyExec shell;
  start_pty(t, shell, {"sh"}, {100, 30});
  t.vm().agent().resize(shell.id, 120, 40);
  type(t, shell, "stty size\n");
  REQUIRE(t.run_until([&] { return shell.outcome.out.find("40 120\r\n") != std::string::npos || shell.outcome.done(); }));
  type(t, shell, "exit 5\n");
  REQUIRE(t.run_until([&] { return shell.outcome.done(); }));
  INFO(shell.outcome.out);
  REQUIRE(shell.outcome.exit);
  CHECK(shell.outcome.exit->status == 5);

  // ^C through the line discipline, not a Signal.
  PtyExec sleeper;
  start_pty(t, sleeper, {"sleep", "100"}, {80, 24});
  type(t, sleeper, "\x03");
  auto start = std::chrono::steady_clock::now();
  REQUIRE(t.run_until([&] { return sleeper.outcome.done(); }, std::chrono::seconds(30)));
  REQUIRE(sleeper.outcome.exit);
  CHECK(sleeper.outcome.exit->kind == protocol::ExitKind::kSignaled);
  CHECK(sleeper.outcome.exit->status == SIGINT);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));

  // A resize of an exec without a terminal is dropped on the host; the exec
  // goes on undisturbed.
  ExecOutcome plain;
  std::uint32_t id = t.start(plain, {"sh", "-c", "sleep 0.5; echo plain"});
  t.vm().agent().resize(id, 120, 40);
  REQUIRE(t.run_until([&] { return plain.done(); }));
  INFO(plain.failure);
  REQUIRE(plain.exit);
  CHECK(plain.out == "plain\n");
}

TEST_CASE("vm: unknown exec ids are refused without disturbing running execs") {
  BootedVm t;
  ExecOutcome sleeper;
  std::uint32_t id = t.start(sleeper, {"sh", "-c", "read x; echo got $x"});
  // Signals to an id nobody started are answered with an error, not obeyed.
  t.vm().agent().channel().send(protocol::Signal{id + 1000, 9});
  t.vm().agent().channel().send(protocol::Stdin{id + 1000, true, {}});
  // The real exec still gets its stdin... it was started without stdin, so it
  // reads EOF and prints an empty value.
  REQUIRE(t.run_until([&] { return sleeper.done(); }));
  REQUIRE(sleeper.exit.has_value());
  CHECK(sleeper.out == "got\n");
}

TEST_CASE("vm: in stack mode the guest's DHCP discover arrives on network_link(), length-framed") {
  bool link_before_hello = false;
  BootedVm t({.network = vm::NetworkMode::kStack,
              .on_spawned = [&](vm::Vm& v) { link_before_hello = v.has_network_link() && v.network_link().is_open(); }});
  CHECK(link_before_hello);  // the stack can attach before the guest's DHCP, which precedes its hello
  REQUIRE(t.vm().has_network_link());
  // Nothing answered, so the guest's discovers (sent before its hello) wait in
  // the socket. Frames are read until the first IPv4 one: IPv6 chatter may come first.
  std::array<std::uint8_t, 4> length_bytes{};
  std::vector<std::uint8_t> frame;
  bool found = false;
  std::string error;
  std::function<void()> read_next = [&] {
    asio::async_read(t.vm().network_link(), asio::buffer(length_bytes), [&](boost::system::error_code ec, std::size_t) {
      if (ec) return void(error = ec.message());
      std::uint32_t n = (std::uint32_t{length_bytes[0]} << 24) | (std::uint32_t{length_bytes[1]} << 16) |
                        (std::uint32_t{length_bytes[2]} << 8) | length_bytes[3];
      if (n < 14 || n > 65550) return void(error = "implausible frame length " + std::to_string(n));
      frame.assign(n, 0);
      asio::async_read(t.vm().network_link(), asio::buffer(frame), [&](boost::system::error_code ec2, std::size_t) {
        if (ec2) return void(error = ec2.message());
        if (frame[12] == 0x08 && frame[13] == 0x00) found = true;
        else read_next();
      });
    });
  };
  read_next();
  REQUIRE(t.run_until([&] { return found || !error.empty(); }, std::chrono::seconds(30)));
  INFO("error: " << error);
  REQUIRE(found);
  // Broadcast from the guest's MAC, UDP 68 -> 67: a DHCP client.
  CHECK(std::vector<std::uint8_t>(frame.begin(), frame.begin() + 6) == std::vector<std::uint8_t>(6, 0xff));
  CHECK(std::vector<std::uint8_t>(frame.begin() + 6, frame.begin() + 12) ==
        std::vector<std::uint8_t>{0x52, 0x54, 0x00, 0x12, 0x34, 0x56});
  REQUIRE(frame.size() >= 14 + 20 + 8);
  CHECK(frame[14 + 9] == 17);
  std::size_t udp = 14 + std::size_t{frame[14] & 0x0fu} * 4;
  CHECK(((frame[udp] << 8) | frame[udp + 1]) == 68);
  CHECK(((frame[udp + 2] << 8) | frame[udp + 3]) == 67);
  // And the guest still serves commands without an address.
  auto r = t.run({"cat", "/sys/class/net/eth0/address"});
  CHECK(r.out == "52:54:00:12:34:56\n");
}
