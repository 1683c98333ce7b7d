#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include "daemon/session/exec_log.hpp"

using namespace sandboxd;
using namespace sandboxd::session;
using protocol::ws::BinaryKind;

namespace {
Bytes bytes_of(std::size_t n, char c = 'x') { return Bytes(n, static_cast<std::byte>(c)); }
}  // namespace

TEST_CASE("exec log: entries are numbered from 1 and kept as ready messages") {
  ExecLog log("e1", 1024);
  CHECK(log.first_seq() == 1);
  CHECK(log.last_seq() == 0);
  CHECK(log.append_event({{"type", "event"}, {"event", "exec.started"}}) == 1);
  CHECK(log.append_output(BinaryKind::kStdout, as_bytes("hello")) == 2);
  auto event = log.find(1);
  REQUIRE(event);
  CHECK_FALSE(event->binary);
  CHECK(boost::json::parse(event->message).at("seq") == 1);
  auto output = log.find(2);
  REQUIRE(output);
  CHECK(output->binary);
  auto frame = protocol::ws::parse_binary_frame(as_bytes(output->message));
  REQUIRE(frame);
  CHECK(frame->exec_id == "e1");
  CHECK(frame->seq == 2);
  CHECK(as_chars(frame->data) == "hello");
  CHECK_FALSE(log.find(0));
  CHECK_FALSE(log.find(3));
}

TEST_CASE("exec log: only delivered entries are dropped, and half the capacity stays") {
  ExecLog log("e1", 1000);
  for (int i = 0; i < 10; ++i) log.append_output(BinaryKind::kStdout, bytes_of(100));
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

TEST_CASE("exec log: a slow reader holds entries back") {
  ExecLog log("e1", 1000);
  for (int i = 0; i < 12; ++i) log.append_output(BinaryKind::kStderr, bytes_of(100));
  log.trim(3);  // the slowest reader has seen 1 and 2 only
  CHECK(log.first_seq() == 3);
  CHECK(log.output_bytes() == 1000);
  CHECK(log.full());
}
