// DNS over TCP to the gateway's port 53 (RFC 7766): the TcpFlowHandler for
// FlowPlan::Kind::kGatewayDns. The connection is accepted at once; each
// query is unframed (2-byte length, then the message) and handed to the
// DnsServer, and each reply framed back, in the order the answers come.
//
// Bounded: queries are taken from the connection only while fewer than
// kMaxTcpPendingReplies bytes of replies wait for the guest to take them and
// fewer than DnsServer::kMaxResolving of this connection's queries are being
// resolved; a guest that sends queries and never reads stops being read.
// Once the guest has finished sending and has every answer, our side is
// closed too.
//
// A reply that arrives after the connection closed, or after the network
// stopped, is dropped: the answer's callback holds this session weakly.
#pragma once

#include <memory>

#include "daemon/net/egress/dns_server.hpp"
#include "daemon/net/egress/tcp_flow_handler.hpp"

namespace sandboxd::net {

class DnsTcpSession final : public TcpFlowHandler, public std::enable_shared_from_this<DnsTcpSession> {
 public:
  static constexpr std::size_t kMaxTcpPendingReplies = 256 * 1024;

  DnsTcpSession(std::weak_ptr<EgressContext> context, std::shared_ptr<DnsServer> server, FlowId id);

  // Accepts the guest's SYN.
  void open();

  void on_readable() override;
  void on_writable() override;
  void on_closed(std::string_view reason, Bytes leftover) override;
  void stop() override;

 private:
  void take_queries(EgressContext& context);
  void on_reply(Bytes reply);
  void flush(EgressContext& context);
  std::shared_ptr<EgressContext> live() const { return closed_ ? nullptr : running(context_); }

  std::weak_ptr<EgressContext> context_;
  std::shared_ptr<DnsServer> server_;
  FlowId id_;
  Bytes replies_;  // framed, not yet taken by the connection
  unsigned resolving_ = 0;
  bool closed_ = false;
};

}  // namespace sandboxd::net
