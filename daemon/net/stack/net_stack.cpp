// NetStack, the frames: input dispatched by EtherType and IP protocol, the
// gateway's own answers (ARP, ICMP echo, DHCP), and the rhythm of poll().
// The guest's flows are in net_stack_tcp.cpp and net_stack_udp.cpp.
#include "daemon/net/stack/net_stack.hpp"

#include <algorithm>

#include "daemon/net/wire/arp.hpp"
#include "daemon/net/wire/dhcp.hpp"
#include "daemon/net/wire/ethernet.hpp"
#include "daemon/net/wire/icmp.hpp"

namespace sandboxd::net {
using wire::EthernetRepr;
using wire::EtherType;
using wire::IpProtocol;
using wire::Ipv4Address;
using wire::Ipv4Repr;
using wire::UdpRepr;

std::vector<StackEvent> NetStack::take_events() {
  std::vector<StackEvent> out;
  out.swap(events_);
  return out;
}

// ---- input ---------------------------------------------------------------

void NetStack::receive_frame(ByteSpan frame, Instant now) {
  ++counters_.frames_in;
  counters_.bytes_in += frame.size();
  auto eth = EthernetRepr::parse(frame);
  if (!eth) return drop(DropReason::kMalformedEthernet);
  if (eth->dst != config_.gateway_mac && !eth->dst.is_broadcast()) return drop(DropReason::kNotForGateway);
  if (eth->src != config_.guest_mac) return drop(DropReason::kSpoofedSource);
  switch (eth->ethertype) {
    case EtherType::kArp: return handle_arp(eth->payload);
    case EtherType::kIpv4: return handle_ipv4(eth->payload, now);
    default: return drop(DropReason::kUnsupportedEtherType);
  }
}

void NetStack::handle_ipv4(ByteSpan payload, Instant now) {
  auto ip = Ipv4Repr::parse(payload);
  if (!ip) return drop(DropReason::kMalformedIpv4);
  if (ip->is_fragment()) return drop(DropReason::kFragment);
  // Before DHCP the guest has no address; only DHCP may come from 0.0.0.0.
  bool unconfigured = ip->src.is_unspecified() && ip->protocol == IpProtocol::kUdp;
  if (ip->src != config_.guest_ip && !unconfigured) return drop(DropReason::kSpoofedSource);
  switch (ip->protocol) {
    case IpProtocol::kIcmp: return handle_icmp(*ip);
    case IpProtocol::kUdp: return handle_udp(*ip, now);
    case IpProtocol::kTcp: return handle_tcp(*ip, now);
  }
  drop(DropReason::kUnsupportedProtocol);
}

// ---- the gateway's own answers --------------------------------------------

void NetStack::handle_arp(ByteSpan payload) {
  auto arp = wire::ArpRepr::parse(payload);
  if (!arp) return drop(DropReason::kMalformedArp);
  if (arp->sender_mac != config_.guest_mac) return drop(DropReason::kSpoofedSource);
  // Replies (and gratuitous announcements) need no answer: the gateway keeps
  // no neighbour cache, it knows its one neighbour.
  if (arp->operation != wire::ArpOperation::kRequest) return;
  // The guest's own address, or a probe for it (RFC 5227), gets no answer:
  // answering would tell the guest its address is taken.
  if (arp->target_ip == config_.guest_ip || arp->target_ip.is_unspecified() || arp->sender_ip == arp->target_ip)
    return;
  wire::ArpRepr reply{wire::ArpOperation::kReply, config_.gateway_mac, arp->target_ip, arp->sender_mac,
                      arp->sender_ip};
  Bytes& out = outbound_.begin_frame();
  const std::size_t start = out.size();
  EthernetRepr{arp->sender_mac, config_.gateway_mac, EtherType::kArp, {}}.emit_header(out);
  reply.emit(out);
  counters_.bytes_out += out.size() - start;
  outbound_.end_frame();
  ++counters_.frames_out;
  ++counters_.arp_replies;
}

void NetStack::handle_icmp(const Ipv4Repr& ip) {
  auto icmp = wire::IcmpRepr::parse(ip.payload);
  if (!icmp) return drop(DropReason::kMalformedIcmp);
  if (icmp->type != wire::IcmpType::kEchoRequest || ip.dst != config_.gateway_ip)
    return drop(DropReason::kUnsupportedIcmp);
  wire::IcmpRepr reply = *icmp;
  reply.type = wire::IcmpType::kEchoReply;
  reply.code = 0;
  Bytes& out = outbound_.begin_frame();
  const std::size_t start = out.size();
  EthernetRepr{config_.guest_mac, config_.gateway_mac, EtherType::kIpv4, {}}.emit_header(out);
  Ipv4Repr header;
  header.src = config_.gateway_ip;
  header.dst = ip.src;
  header.protocol = IpProtocol::kIcmp;
  header.identification = next_ip_id_++;
  header.emit_header(out, wire::IcmpRepr::kHeaderLength + reply.payload.size());
  reply.emit(out);
  counters_.bytes_out += out.size() - start;
  outbound_.end_frame();
  ++counters_.frames_out;
  ++counters_.icmp_echo_replies;
}

void NetStack::handle_dhcp(const UdpRepr& udp) {
  auto request = wire::DhcpRepr::parse(udp.payload);
  if (!request) return drop(DropReason::kMalformedDhcp);
  auto reply = dhcp_.answer(*request);
  if (!reply) return;
  Bytes message;
  reply->emit(message);
  // A client without an address, or one that asked for broadcast, cannot
  // take a unicast IP datagram yet (RFC 2131 section 4.1).
  bool to_broadcast = reply->broadcast || request->ciaddr.is_unspecified() ||
                      reply->message_type == wire::DhcpMessageType::kNak;
  Ipv4Address dst = to_broadcast ? Ipv4Address::broadcast() : request->ciaddr;
  emit_udp(config_.gateway_ip, wire::DhcpRepr::kServerPort, dst, wire::DhcpRepr::kClientPort, message,
           config_.guest_mac);
  ++counters_.dhcp_replies;
}

// ---- time ----------------------------------------------------------------

void NetStack::poll(Instant now) {
  poll_tcp(now);
  expire_udp(now);
}

std::optional<Instant> NetStack::next_deadline() const {
  auto tcp = next_tcp_deadline();
  auto udp = next_udp_deadline();
  if (tcp && udp) return std::min(*tcp, *udp);
  return tcp ? tcp : udp;
}

}  // namespace sandboxd::net
