// The host's side of the control channel against a fake guest over a
// socketpair: what a hostile or broken guest can send must not hurt the host.
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "daemon/agent/guest_agent.hpp"
#include "protocol/codec.hpp"

using namespace sandboxd;
using namespace sandboxd::protocol;
namespace asio = boost::asio;

namespace {

struct Harness {
  asio::io_context io;
  int guest_fd = -1;
  std::shared_ptr<agent::GuestAgent> agent;
  std::vector<std::string> problems;
  std::optional<Hello> hello;
  std::string closed;
  FrameDecoder from_host;

  Harness() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    guest_fd = fds[1];
    auto channel = std::make_shared<agent::AgentChannel>(
        agent::AgentChannel::Socket(io, asio::local::stream_protocol(), fds[0]));
    agent = std::make_shared<agent::GuestAgent>(channel);
    agent->start({
        .on_hello = [this](const Hello& h) { hello = h; },
        .on_closed = [this](const std::string& why) { closed = why; },
        .on_protocol_problem = [this](const std::string& what) { problems.push_back(what); },
    });
  }
  ~Harness() {
    if (guest_fd >= 0) ::close(guest_fd);
  }
  // Writes everything, letting the host side read while the socket is full.
  void guest_sends(const Bytes& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(guest_fd, bytes.data() + done, bytes.size() - done, MSG_DONTWAIT);
      if (n > 0) done += static_cast<std::size_t>(n);
      else settle();
    }
  }
  void guest_sends(const Message& m) { guest_sends(encode(m)); }
  void settle() {
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  std::vector<Message> host_sent() {
    std::vector<Message> out;
    std::byte buf[65536];
    // Alternate between letting the host write and draining the socket until
    // a round brings nothing new.
    for (bool got = true; got;) {
      settle();
      got = false;
      for (ssize_t n; (n = ::recv(guest_fd, buf, sizeof buf, MSG_DONTWAIT)) > 0;) {
        from_host.feed(ByteSpan(buf, static_cast<std::size_t>(n)));
        got = true;
      }
    }
    while (auto r = from_host.next())
      if (auto* m = std::get_if<Message>(&*r)) out.push_back(*m);
    return out;
  }
};

}  // namespace

TEST_CASE("guest agent proxy: garbage from the guest is reported and the stream recovers") {
  Harness h;
  h.guest_sends(Bytes{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{3}, std::byte{1}, std::byte{0x7f}, std::byte{0}});
  h.guest_sends(Hello{"1.0", {"exec"}});
  h.settle();
  REQUIRE(h.hello.has_value());
  CHECK(h.hello->agent_version == "1.0");
  REQUIRE(h.problems.size() == 1);
  CHECK(h.problems[0].find("unknown-type") != std::string::npos);
  CHECK(h.closed.empty());
}

TEST_CASE("guest agent proxy: an oversized frame from the guest is skipped, not buffered") {
  Harness h;
  Bytes header;
  ByteWriter w(header);
  w.u32(kMaxFrameBody * 8);
  h.guest_sends(header);
  Bytes junk(1 << 20, std::byte{0x41});
  for (int i = 0; i < 8; ++i) {
    h.guest_sends(junk);
    h.settle();
  }
  h.guest_sends(Hello{"2.0", {}});
  h.settle();
  REQUIRE(h.hello.has_value());
  CHECK(h.problems.size() == 1);
  CHECK(h.problems[0].find("frame-too-large") != std::string::npos);
}

TEST_CASE("guest agent proxy: messages about execs nobody started are ignored") {
  Harness h;
  h.guest_sends(Output{99, Stream::kStdout, Bytes(10, std::byte{1})});
  h.guest_sends(Exit{99, ExitKind::kExited, 0, 0, 0, 0, ""});
  h.guest_sends(ExecStart{1, {"x"}, {}, "", false});  // host-only message
  h.settle();
  CHECK(h.problems.size() == 3);
  CHECK(h.closed.empty());
}

TEST_CASE("guest agent proxy: exec output is routed by id and stdin respects the credit window") {
  Harness h;
  std::string out;
  std::optional<Exit> exit;
  std::uint32_t id = h.agent->start_exec({{"cat"}, {}, "/", true},
                                         {.on_started = {},
                                          .on_output = [&](Stream, Bytes&& d) { out += as_chars(d); },
                                          .on_stdin_credit = {},
                                          .on_exit = [&](const Exit& e) { exit = e; },
                                          .on_failed = {}});
  auto sent = h.host_sent();
  REQUIRE(sent.size() == 1);
  REQUIRE(std::holds_alternative<ExecStart>(sent[0]));
  CHECK(std::get<ExecStart>(sent[0]).id == id);

  // Offer twice the window: only one window's worth is taken.
  Bytes big(2 * kStdinWindow, std::byte{'z'});
  CHECK(h.agent->write_stdin(id, big, true) == kStdinWindow);
  CHECK(h.agent->stdin_credit(id) == 0);
  std::size_t stdin_bytes = 0;
  bool eof = false;
  for (auto& m : h.host_sent()) {
    if (auto* s = std::get_if<Stdin>(&m)) {
      stdin_bytes += s->data.size();
      CHECK(s->data.size() <= kMaxChunk);
      eof = eof || s->eof;
    }
  }
  CHECK(stdin_bytes == kStdinWindow);
  CHECK_FALSE(eof);  // eof only goes with the last byte
  h.guest_sends(StdinAck{id, 1000});
  h.settle();
  CHECK(h.agent->stdin_credit(id) == 1000);
  // An ack beyond what was sent is a guest bug: reported, credit unchanged.
  h.guest_sends(StdinAck{id, kStdinWindow * 2});
  h.settle();
  CHECK(h.agent->stdin_credit(id) == 1000);
  CHECK(h.problems.size() == 1);

  h.guest_sends(Output{id, Stream::kStdout, Bytes(3, std::byte{'a'})});
  h.guest_sends(Exit{id, ExitKind::kExited, 3, 0, 0, 0, ""});
  h.settle();
  CHECK(out == "aaa");
  REQUIRE(exit.has_value());
  CHECK(exit->status == 3);
  CHECK(h.agent->running_execs() == 0);
}

TEST_CASE("guest agent proxy: a guest that disappears fails its running execs") {
  Harness h;
  std::string failure;
  h.agent->start_exec({{"sleep", "100"}, {}, "/", false},
                      {.on_started = {}, .on_output = [](Stream, Bytes&&) {}, .on_stdin_credit = {}, .on_exit = {},
                       .on_failed = [&](const std::string& why) { failure = why; }});
  h.settle();
  ::close(h.guest_fd);
  h.guest_fd = -1;
  h.settle();
  CHECK(failure.find("connection to the guest lost") != std::string::npos);
  CHECK_FALSE(h.closed.empty());
  CHECK_FALSE(h.agent->connected());
}
