// One guest UDP flow carried by a connected host UDP socket: datagrams from
// the guest are sent as they come, datagrams from the destination go back
// to the guest on the same flow. Connecting the socket makes the kernel drop
// datagrams from anyone else. A datagram the socket cannot take at once is
// dropped, as UDP may; errors the destination reports (ICMP port
// unreachable) end nothing: the flow ends when the stack expires it.
//
// The pending receive holds the proxy alive and the egress context weakly:
// a datagram that completes after the network is gone touches nothing.
#pragma once

#include <boost/asio/ip/udp.hpp>
#include <memory>

#include "daemon/net/egress/egress_context.hpp"

namespace sandboxd::net {

class UdpProxy : public std::enable_shared_from_this<UdpProxy> {
 public:
  UdpProxy(boost::asio::any_io_executor executor, std::weak_ptr<EgressContext> context, FlowId id);

  // Opens and connects the socket; false (with the flow unusable) on failure.
  bool open(const boost::asio::ip::udp::endpoint& destination);
  void send(ByteSpan payload);
  void stop();

  std::uint64_t send_drops() const { return send_drops_; }

 private:
  void receive();

  std::weak_ptr<EgressContext> context_;
  FlowId id_;
  boost::asio::ip::udp::socket socket_;
  Bytes buffer_;
  bool stopped_ = false;
  std::uint64_t send_drops_ = 0;
};

}  // namespace sandboxd::net
