// The host end of the control port: frames in, frames out.
//
// Reads run continuously and hand each decoded message (or each frame error)
// to the owner. Writes go through a queue with one async_write in flight.
// The queue is not bounded here: what is queued is bounded by the protocol's
// credit windows (stdin) and by the small size of every other message; the
// owner can read queued_bytes() to apply its own limit.
#pragma once

#include <boost/asio/local/stream_protocol.hpp>
#include <deque>
#include <functional>
#include <memory>

#include "protocol/frame_decoder.hpp"

namespace sandboxd::agent {

class AgentChannel : public std::enable_shared_from_this<AgentChannel> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  struct Handlers {
    std::function<void(protocol::Message&&)> on_message;
    // A frame from the guest that did not decode; the stream goes on.
    std::function<void(const protocol::FrameError&)> on_frame_error;
    // The stream ended or failed; no more callbacks follow.
    std::function<void(const boost::system::error_code&)> on_closed;
  };

  explicit AgentChannel(Socket socket);

  void start(Handlers handlers);
  void send(const protocol::Message& message);
  // Queues bytes exactly as given. For tests that play a hostile host.
  void send_raw(Bytes bytes);
  void close();

  std::size_t queued_bytes() const { return queued_bytes_; }
  std::uint64_t frame_errors() const { return frame_errors_; }

 private:
  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void do_write();
  void on_write(const boost::system::error_code& ec, std::size_t n);
  void fail(const boost::system::error_code& ec);

  Socket socket_;
  Handlers handlers_;
  protocol::FrameDecoder decoder_;
  std::array<std::byte, 256 * 1024> read_buf_{};
  std::deque<Bytes> write_queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  std::uint64_t frame_errors_ = 0;
};

}  // namespace sandboxd::agent
