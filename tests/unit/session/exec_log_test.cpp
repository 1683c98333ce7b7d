#include <catch2/catch.hpp>

#include "daemon/session/exec_log.hpp"

using namespace sandboxd;
using namespace sandboxd::session;
using protocol::Stream;

namespace {
Bytes bytes_of(std::size_t n, char c = 'x') { return Bytes(n, static_cast<std::byte>(c)); }

// A format that shows what the log asked of it.
struct TextFormat final : LogFormat {
  std::string output(const ExecIds& ids, std::uint64_t seq, Stream stream, ByteSpan data) const override {
    return "out " + ids.exec + " " + std::to_string(seq) + (stream == Stream::kStderr ? " err " : " out ") +
           std::string(as_chars(data));
  }
  std::string event(const ExecIds& ids, std::uint64_t seq, const ExecEvent& event) const override {
    return "event " + ids.sandbox + "/" + ids.exec + " " + std::to_string(seq) + " kind " +
           std::to_string(static_cast<int>(event.kind));
  }
};
const TextFormat kFormat;
}  // namespace

TEST_CASE("exec log: entries are numbered from 1 and kept as the format made them") {
  ExecLog log({"e1", "sb-1"}, 1024, kFormat);
  CHECK(log.first_seq() == 1);
  CHECK(log.last_seq() == 0);
  CHECK(log.append_event({.kind = ExecEvent::Kind::kStarted, .pid = 7}) == 1);
  CHECK(log.append_output(Stream::kStdout, as_bytes("hello")) == 2);
  auto event = log.find(1);
  REQUIRE(event);
  CHECK_FALSE(event->binary);
  CHECK(event->event == ExecEvent::Kind::kStarted);
  CHECK(event->message == "event sb-1/e1 1 kind 0");
  auto output = log.find(2);
  REQUIRE(output);
  CHECK(output->binary);
  CHECK_FALSE(output->event);
  CHECK(output->message == "out e1 2 out hello");
  CHECK(output->output_bytes == 5);
  CHECK_FALSE(log.find(0));
  CHECK_FALSE(log.find(3));
}

TEST_CASE("exec log: only delivered entries are dropped, and half the capacity stays") {
  ExecLog log({"e1", "sb-1"}, 1000, kFormat);
  for (int i = 0; i < 10; ++i) log.append_output(Stream::kStdout, bytes_of(100));
  CHECK(log.full());
  // Nothing delivered: nothing may go, however full.
  CHECK_FALSE(log.trim(1));
  CHECK(log.first_seq() == 1);
  // Everything delivered: down to half the capacity, newest kept.
  CHECK(log.trim(11));
  CHECK(log.output_bytes() == 500);
  CHECK(log.first_seq() == 6);
  CHECK_FALSE(log.full());
  CHECK(log.find(10));
  CHECK_FALSE(log.find(5));
}

TEST_CASE("exec log: what is left after a trim is never less than half the capacity, whatever the chunk sizes") {
  ExecLog log({"e1", "sb-1"}, 1000, kFormat);
  for (int i = 0; i < 4; ++i) log.append_output(Stream::kStdout, bytes_of(300));
  CHECK(log.full());
  CHECK(log.trim(5));
  // Dropping the third chunk too would leave 300 bytes, less than half.
  CHECK(log.output_bytes() == 600);
  CHECK(log.first_seq() == 3);
}

TEST_CASE("exec log: a slow reader holds entries back") {
  ExecLog log({"e1", "sb-1"}, 1000, kFormat);
  for (int i = 0; i < 12; ++i) log.append_output(Stream::kStderr, bytes_of(100));
  log.trim(3);  // the slowest reader has seen 1 and 2 only
  CHECK(log.first_seq() == 3);
  CHECK(log.output_bytes() == 1000);
  CHECK(log.full());
}
