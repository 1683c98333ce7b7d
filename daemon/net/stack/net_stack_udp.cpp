// NetStack, the guest's UDP flows: a flow per four-tuple, opened by its
// first datagram and expired after config.udp_idle_timeout without traffic,
// and the datagrams sent to the guest on a flow or on the gateway's behalf.
#include "daemon/net/stack/net_stack.hpp"
#include "daemon/net/wire/dhcp.hpp"
#include "daemon/net/wire/ethernet.hpp"

namespace sandboxd::net {
using wire::EthernetRepr;
using wire::EtherType;
using wire::IpProtocol;
using wire::Ipv4Address;
using wire::Ipv4Repr;
using wire::MacAddress;
using wire::UdpRepr;

void NetStack::handle_udp(const Ipv4Repr& ip, Instant now) {
  auto udp = UdpRepr::parse(ip.payload, ip.src, ip.dst);
  if (!udp) return drop(DropReason::kMalformedUdp);
  if (udp->dst_port == wire::DhcpRepr::kServerPort && udp->src_port == wire::DhcpRepr::kClientPort &&
      (ip.dst.is_broadcast() || ip.dst == config_.gateway_ip))
    return handle_dhcp(*udp);
  if (ip.src.is_unspecified()) return drop(DropReason::kSpoofedSource);
  if (ip.dst.is_broadcast() || ip.dst.is_multicast() || ip.dst.is_unspecified() || udp->dst_port == 0)
    return drop(DropReason::kNotForGateway);

  FlowKey key{ip.src, udp->src_port, ip.dst, udp->dst_port};
  bool new_flow = false;
  auto it = udp_by_key_.find(key);
  FlowId id;
  if (it == udp_by_key_.end()) {
    if (udp_.size() >= config_.max_udp_flows) return drop(DropReason::kUdpFlowLimit);
    id = next_id_++;
    udp_by_key_.emplace(key, id);
    udp_.emplace(id, UdpEntry{key, now});
    new_flow = true;
    ++counters_.udp_flows_opened;
    counters_.udp_flows_active = udp_.size();
  } else {
    id = it->second;
    udp_.at(id).last_activity = now;
  }
  ++counters_.udp_datagrams_in;
  StackEvent event{StackEvent::Kind::kUdpDatagram, id, key};
  event.new_flow = new_flow;
  event.payload.assign(udp->payload.begin(), udp->payload.end());
  events_.push_back(std::move(event));
}

void NetStack::expire_udp(Instant now) {
  for (auto it = udp_.begin(); it != udp_.end();) {
    if (now - it->second.last_activity >= config_.udp_idle_timeout) {
      events_.push_back(StackEvent{StackEvent::Kind::kUdpClosed, it->first, it->second.key});
      udp_by_key_.erase(it->second.key);
      it = udp_.erase(it);
    } else {
      ++it;
    }
  }
  counters_.udp_flows_active = udp_.size();
}

std::optional<Instant> NetStack::next_udp_deadline() const {
  std::optional<Instant> earliest;
  for (const auto& [id, flow] : udp_) {
    Instant expiry = flow.last_activity + config_.udp_idle_timeout;
    if (!earliest || expiry < *earliest) earliest = expiry;
  }
  return earliest;
}

void NetStack::emit_udp(Ipv4Address src, std::uint16_t src_port, Ipv4Address dst, std::uint16_t dst_port,
                        ByteSpan payload, MacAddress dst_mac) {
  Bytes& out = outbound_.begin_frame();
  const std::size_t start = out.size();
  EthernetRepr{dst_mac, config_.gateway_mac, EtherType::kIpv4, {}}.emit_header(out);
  Ipv4Repr header;
  header.src = src;
  header.dst = dst;
  header.protocol = IpProtocol::kUdp;
  header.identification = next_ip_id_++;
  header.emit_header(out, UdpRepr::kHeaderLength + payload.size());
  UdpRepr{src_port, dst_port, payload}.emit(out, src, dst);
  counters_.bytes_out += out.size() - start;
  outbound_.end_frame();
  ++counters_.frames_out;
}

// ---- calls from the egress side ------------------------------------------

void NetStack::udp_send(FlowId id, ByteSpan payload, Instant now) {
  auto it = udp_.find(id);
  if (it == udp_.end()) return;
  it->second.last_activity = now;
  udp_send_from(it->second.key, payload);
}

void NetStack::udp_send_from(const FlowKey& key, ByteSpan payload) {
  // The stack does not fragment: a datagram the link cannot carry whole is
  // not sent, as a router with DF would not.
  if (payload.size() + UdpRepr::kHeaderLength + Ipv4Repr::kMinHeaderLength > config_.mtu) {
    ++counters_.udp_datagrams_too_big;
    return;
  }
  emit_udp(key.remote_ip, key.remote_port, key.guest_ip, key.guest_port, payload, config_.guest_mac);
  ++counters_.udp_datagrams_out;
}

void NetStack::udp_close(FlowId id) {
  auto it = udp_.find(id);
  if (it == udp_.end()) return;
  udp_by_key_.erase(it->second.key);
  udp_.erase(it);
  counters_.udp_flows_active = udp_.size();
}

}  // namespace sandboxd::net
