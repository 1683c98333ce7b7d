#include "daemon/net/stack/dhcp_server.hpp"

namespace sandboxd::net {
using wire::DhcpMessageType;
using wire::DhcpRepr;

std::optional<DhcpRepr> DhcpServer::answer(const DhcpRepr& request) const {
  if (request.op != wire::BootpOp::kRequest || !request.message_type) return std::nullopt;
  if (request.chaddr != config_.guest_mac) return std::nullopt;
  switch (*request.message_type) {
    case DhcpMessageType::kDiscover: return reply_to(request, DhcpMessageType::kOffer);
    case DhcpMessageType::kRequest: {
      // SELECTING and INIT-REBOOT name the address in option 50; RENEWING and
      // REBINDING in ciaddr.
      auto wanted = request.requested_ip.value_or(request.ciaddr);
      bool other_server = request.server_id && *request.server_id != config_.gateway_ip;
      if (other_server) return std::nullopt;  // the client chose someone else's offer
      if (wanted != config_.guest_ip) return reply_to(request, DhcpMessageType::kNak);
      return reply_to(request, DhcpMessageType::kAck);
    }
    case DhcpMessageType::kInform: {
      DhcpRepr reply = reply_to(request, DhcpMessageType::kAck);
      reply.yiaddr = wire::Ipv4Address::unspecified();
      reply.lease_time.reset();
      reply.renewal_time.reset();
      reply.rebinding_time.reset();
      return reply;
    }
    default: return std::nullopt;
  }
}

DhcpRepr DhcpServer::reply_to(const DhcpRepr& request, DhcpMessageType type) const {
  DhcpRepr reply;
  reply.op = wire::BootpOp::kReply;
  reply.xid = request.xid;
  reply.broadcast = request.broadcast;
  reply.giaddr = request.giaddr;
  reply.chaddr = request.chaddr;
  reply.message_type = type;
  reply.server_id = config_.gateway_ip;
  if (type == DhcpMessageType::kNak) return reply;

  reply.yiaddr = config_.guest_ip;
  reply.subnet_mask = config_.netmask();
  reply.routers = {config_.gateway_ip};
  reply.dns_servers = {config_.gateway_ip};
  const auto lease = static_cast<std::uint32_t>(config_.lease_time.count());
  reply.lease_time = lease;
  reply.renewal_time = lease / 2;
  reply.rebinding_time = lease / 8 * 7;
  reply.interface_mtu = config_.mtu;
  return reply;
}

}  // namespace sandboxd::net
