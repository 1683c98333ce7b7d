// One guest TCP connection carried to its destination by a host socket: the
// TcpFlowHandler for flows the policy lets out (FlowPlan::Kind::kConnect).
//
// The relay moves bytes between the stack's connection and the socket and
// nothing more; flow control is the stack's buffers. Upstream is read only
// into the space the connection's send buffer has (send_space), so a guest
// that does not read stops the socket being read; the guest's bytes are
// written upstream straight from the connection's receive buffer and
// consumed only once written, so an upstream that does not read closes the
// guest's window.
//
// The socket is non-blocking and driven by readiness (async_wait), not by
// async reads and writes: reads go into the one buffer all relays share
// and writes come from the stack's buffer, so a connection holds no buffer
// of its own — a flood of idle connections costs little memory.
//
// Half-close is carried both ways: the guest's FIN becomes shutdown(send) on
// the socket once its bytes are written, the socket's EOF becomes our FIN. A
// socket error or a reset from the guest ends both sides at once. After a
// graceful close the guest's last bytes are still written upstream; that
// write, once started, has kFinalWriteTimeout to finish, stopped network or
// not, and then the socket is closed.
//
// Every completion checks running(context_) before it touches the stack: a
// connect or a readiness wait can complete after the network is gone.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

#include "daemon/net/egress/tcp_flow_handler.hpp"

namespace sandboxd::net {

class TcpRelay final : public TcpFlowHandler, public std::enable_shared_from_this<TcpRelay> {
 public:
  static constexpr std::chrono::seconds kConnectTimeout{20};
  static constexpr std::chrono::seconds kFinalWriteTimeout{30};
  // Reads per readiness wake-up, so one busy socket does not starve the rest.
  static constexpr int kReadsPerWakeup = 4;

  TcpRelay(boost::asio::any_io_executor executor, std::weak_ptr<EgressContext> context, FlowId id);

  // Connects to `destination`; accepts the guest's SYN once connected, or
  // refuses it when the connection fails or times out.
  void connect(const boost::asio::ip::tcp::endpoint& destination);

  void on_readable() override;
  void on_writable() override;
  void on_closed(std::string_view reason, Bytes leftover) override;
  void stop() override;

 private:
  void on_connect(const boost::system::error_code& ec);
  void write_upstream(EgressContext& context);
  void wait_writable();
  void write_final();
  void read_upstream(EgressContext& context);
  void drain_upstream(EgressContext& context);
  void fail(EgressContext& context);
  void close_socket();
  // The context, while this flow is open and its network runs.
  std::shared_ptr<EgressContext> live() const { return closed_ ? nullptr : running(context_); }

  std::weak_ptr<EgressContext> context_;
  FlowId id_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer deadline_;  // the connect, then the final write
  Bytes final_bytes_;                   // after a graceful close, the guest's last bytes
  bool connected_ = false;
  bool waiting_read_ = false;
  bool waiting_write_ = false;
  bool upstream_eof_ = false;
  bool shutdown_sent_ = false;
  bool closed_ = false;  // the stack's side is over; the id is dead
};

}  // namespace sandboxd::net
