// A fake guest on the far end of a SandboxNetwork's link: the socket QEMU
// would hold. Frames go out with the stream framing's length in front and
// come back parsed (stack_test_guest.hpp), so tests of the running network
// — egress, DNS, assignment — speak in datagrams and segments too.
//
// Everything runs on the test's own io_context, on this thread: the guest's
// socket is used synchronously, and run_until() turns the loop until what
// the test waits for has happened.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <utility>

#include "daemon/net/wire/stream_framing.hpp"
#include "tests/unit/net/stack_test_guest.hpp"

namespace sandboxd::net::test {

using LinkSocket = boost::asio::local::stream_protocol::socket;

// The two ends of a link: the network's, and the guest's.
inline std::pair<LinkSocket, LinkSocket> link_pair(boost::asio::io_context& io) {
  LinkSocket network_end(io), guest_end(io);
  boost::asio::local::connect_pair(network_end, guest_end);
  return {std::move(network_end), std::move(guest_end)};
}

// Runs `io` until `done()` holds or `limit` passes; returns whether it held.
// `done` may take what it waits for (it is not asked again once true).
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
}

class LinkGuest : public GuestFrames {
 public:
  LinkGuest(LinkSocket socket, const StackConfig& config) : GuestFrames(config), socket_(std::move(socket)) {
    socket_.non_blocking(true);
  }

  void send(ByteSpan frame) {
    wire::FrameBatch batch;
    batch.add(frame);
    socket_.non_blocking(false);
    boost::asio::write(socket_, boost::asio::buffer(batch.bytes()));
    socket_.non_blocking(true);
  }

  // Every frame the network has written so far, appended to received.
  void collect() {
    std::byte chunk[65536];
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = socket_.read_some(boost::asio::buffer(chunk), ec);
      if (n > 0) decoder_.feed(ByteSpan(chunk, n), [&](ByteSpan frame) { received.push_back(parse(frame)); });
      if (ec == boost::asio::error::eof) closed = true;
      if (ec || n == 0) return;
    }
  }

  // The first received frame that `match` accepts, taken out of received.
  std::optional<SentFrame> take(const std::function<bool(const SentFrame&)>& match) {
    collect();
    for (auto it = received.begin(); it != received.end(); ++it) {
      if (!match(*it)) continue;
      SentFrame f = std::move(*it);
      received.erase(it);
      return f;
    }
    return std::nullopt;
  }

  std::vector<SentFrame> received;
  bool closed = false;  // the network closed its end

 private:
  LinkSocket socket_;
  wire::StreamFrameDecoder decoder_;
};

}  // namespace sandboxd::net::test
