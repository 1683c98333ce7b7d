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
using wire::MacAddress;
using wire::TcpRepr;
using wire::UdpRepr;

struct NetStack::TcpEntry {
  TcpEntry(FlowId flow_id, const FlowKey& flow_key, const TcpRepr& syn, const TcpSettings& settings, Instant now)
      : id(flow_id),
        key(flow_key),
        connection({flow_key.guest_ip, flow_key.guest_port, flow_key.remote_ip, flow_key.remote_port}, syn, settings,
                   now) {}

  FlowId id;
  FlowKey key;
  TcpConnection connection;
  bool dirty = false;
  bool readable_news = false;   // bytes or FIN arrived since the last kTcpReadable
  bool wants_writable = false;  // tcp_send() filled the send buffer
  bool close_reported = false;
};

// Wraps a connection's segments in IPv4 and Ethernet, into the outbound batch.
class NetStack::SegmentSink final : public TcpSegmentSink {
 public:
  SegmentSink(NetStack& stack, const FlowKey& key) : stack_(stack), key_(key) {}
  void emit(const TcpRepr& segment) override { stack_.emit_tcp(segment, key_.remote_ip, key_.guest_ip); }

 private:
  NetStack& stack_;
  const FlowKey& key_;
};

NetStack::NetStack(const StackConfig& config) : config_(config), dhcp_(config_) {}
NetStack::~NetStack() = default;

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

void NetStack::handle_tcp(const Ipv4Repr& ip, Instant now) {
  auto seg = TcpRepr::parse(ip.payload, ip.src, ip.dst);
  if (!seg || seg->src_port == 0 || seg->dst_port == 0) return drop(DropReason::kMalformedTcp);
  if (ip.dst.is_broadcast() || ip.dst.is_multicast() || ip.dst.is_unspecified())
    return drop(DropReason::kNotForGateway);
  FlowKey key{ip.src, seg->src_port, ip.dst, seg->dst_port};
  bool opening = seg->flags.syn && !seg->flags.ack && !seg->flags.rst;

  auto it = tcp_by_key_.find(key);
  if (it != tcp_by_key_.end()) {
    TcpEntry& entry = *tcp_.at(it->second);
    if (opening && entry.connection.state() == TcpConnection::State::kTimeWait) {
      // A new incarnation of a connection in TIME_WAIT (RFC 6191 allows it;
      // our TIME_WAIT only exists to re-ACK a lost final FIN).
      tcp_.erase(it->second);
      tcp_by_key_.erase(it);
      counters_.tcp_connections_active = tcp_.size();
    } else {
      TcpConnection& c = entry.connection;
      const std::size_t before = c.readable().size();
      const bool finished_before = c.guest_finished();
      c.on_segment(*seg, now);
      if (c.readable().size() != before || c.guest_finished() != finished_before) entry.readable_news = true;
      mark_dirty(entry);
      return;
    }
  }
  if (opening) return open_tcp(key, *seg, now);
  drop(DropReason::kTcpNoConnection);
  if (!seg->flags.rst) reset_unknown_segment(ip, *seg);
}

void NetStack::open_tcp(const FlowKey& key, const TcpRepr& syn, Instant now) {
  if (tcp_.size() >= config_.max_tcp_connections && !reclaim_time_wait() && !evict_embryonic(now)) {
    drop(DropReason::kTcpConnectionLimit);
    TcpRepr rst;
    rst.src_port = key.remote_port;
    rst.dst_port = key.guest_port;
    rst.ack_number = syn.seq_number + syn.sequence_length();
    rst.flags.rst = true;
    rst.flags.ack = true;
    emit_tcp(rst, key.remote_ip, key.guest_ip);
    return;
  }
  FlowId id = next_id_++;
  tcp_by_key_.emplace(key, id);
  tcp_.emplace(id, std::make_unique<TcpEntry>(id, key, syn, config_.tcp_settings(), now));
  ++counters_.tcp_connections_opened;
  counters_.tcp_connections_active = tcp_.size();
  events_.push_back(StackEvent{StackEvent::Kind::kTcpOpen, id, key});
}

bool NetStack::reclaim_time_wait() {
  // Our TIME_WAIT only re-ACKs a lost final FIN: once its close has been
  // reported to the egress side, dropping it costs nothing but that re-ACK.
  TcpEntry* oldest = nullptr;
  for (auto& [id, entry] : tcp_) {
    bool reclaimable = entry->connection.state() == TcpConnection::State::kTimeWait && entry->close_reported;
    if (reclaimable && (!oldest || id < oldest->id)) oldest = entry.get();
  }
  if (!oldest) return false;
  ++counters_.tcp_time_wait_reclaimed;
  FlowId id = oldest->id;
  tcp_by_key_.erase(oldest->key);
  tcp_.erase(id);
  counters_.tcp_connections_active = tcp_.size();
  return true;
}

bool NetStack::evict_embryonic(Instant now) {
  // A full table of half-open connections is what a SYN flood leaves; the
  // oldest of them makes room, so a real connection still gets through.
  TcpEntry* oldest = nullptr;
  for (auto& [id, entry] : tcp_) {
    auto state = entry->connection.state();
    bool embryonic = state == TcpConnection::State::kAwaitingAccept || state == TcpConnection::State::kSynReceived;
    if (embryonic && !entry->close_reported && (!oldest || id < oldest->id)) oldest = entry.get();
  }
  if (!oldest) return false;
  oldest->connection.abort();
  SegmentSink sink(*this, oldest->key);
  oldest->connection.poll(now, sink);
  StackEvent event{StackEvent::Kind::kTcpClosed, oldest->id, oldest->key};
  event.reason = "evicted by newer connection attempts";
  events_.push_back(std::move(event));
  ++counters_.tcp_embryonic_evicted;
  FlowId id = oldest->id;
  tcp_by_key_.erase(oldest->key);
  tcp_.erase(id);
  return true;
}

void NetStack::reset_unknown_segment(const Ipv4Repr& ip, const TcpRepr& seg) {
  // RFC 9293 section 3.10.7.1: a segment for no connection is answered with a
  // RST that the sender will accept.
  TcpRepr rst;
  rst.src_port = seg.dst_port;
  rst.dst_port = seg.src_port;
  rst.flags.rst = true;
  if (seg.flags.ack) {
    rst.seq_number = seg.ack_number;
  } else {
    rst.ack_number = seg.seq_number + seg.sequence_length();
    rst.flags.ack = true;
  }
  emit_tcp(rst, ip.dst, ip.src);
}

void NetStack::mark_dirty(TcpEntry& entry) {
  if (entry.dirty) return;
  entry.dirty = true;
  dirty_.push_back(entry.id);
}

// ---- output and time -----------------------------------------------------

void NetStack::poll(Instant now) {
  // Connections with news, and those whose timers have run out.
  std::vector<FlowId> due;
  due.swap(dirty_);
  for (auto& [id, entry] : tcp_) {
    if (entry->dirty) continue;
    auto deadline = entry->connection.next_deadline();
    if (deadline && *deadline <= now) due.push_back(id);
  }
  for (FlowId id : due) {
    auto it = tcp_.find(id);
    if (it == tcp_.end()) continue;
    TcpEntry& entry = *it->second;
    entry.dirty = false;
    TcpConnection& c = entry.connection;
    const std::uint64_t retransmitted_before = c.retransmitted_segments();
    SegmentSink sink(*this, entry.key);
    c.poll(now, sink);
    counters_.tcp_retransmitted_segments += c.retransmitted_segments() - retransmitted_before;

    bool over = c.closed() || c.state() == TcpConnection::State::kTimeWait;
    if (entry.readable_news && !over) {
      entry.readable_news = false;
      events_.push_back(StackEvent{StackEvent::Kind::kTcpReadable, id, entry.key});
    }
    if (entry.wants_writable && !over && c.send_space() > 0) {
      entry.wants_writable = false;
      events_.push_back(StackEvent{StackEvent::Kind::kTcpWritable, id, entry.key});
    }
    if (over && !entry.close_reported) {
      entry.close_reported = true;
      StackEvent event{StackEvent::Kind::kTcpClosed, id, entry.key};
      event.reason = c.closed() ? c.close_reason() : std::string_view("closed");
      if (event.reason == "refused") ++counters_.tcp_connections_refused;
      // What the guest sent before closing and the egress side has not yet
      // taken goes with the event: the id is dead once it is handled.
      ByteSpan rest = c.readable();
      event.payload.assign(rest.begin(), rest.end());
      c.consume(rest.size());
      events_.push_back(std::move(event));
    }
    if (c.closed()) {
      tcp_by_key_.erase(entry.key);
      tcp_.erase(it);
      counters_.tcp_connections_active = tcp_.size();
    }
  }

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

std::optional<Instant> NetStack::next_deadline() const {
  std::optional<Instant> earliest;
  auto consider = [&](Instant t) {
    if (!earliest || t < *earliest) earliest = t;
  };
  for (const auto& [id, entry] : tcp_) {
    if (auto d = entry->connection.next_deadline()) consider(*d);
  }
  for (const auto& [id, flow] : udp_) consider(flow.last_activity + config_.udp_idle_timeout);
  return earliest;
}

void NetStack::emit_tcp(const TcpRepr& segment, Ipv4Address src, Ipv4Address dst) {
  Bytes& out = outbound_.begin_frame();
  const std::size_t start = out.size();
  EthernetRepr{config_.guest_mac, config_.gateway_mac, EtherType::kIpv4, {}}.emit_header(out);
  Ipv4Repr header;
  header.src = src;
  header.dst = dst;
  header.protocol = IpProtocol::kTcp;
  header.identification = next_ip_id_++;
  header.dont_fragment = true;
  header.emit_header(out, segment.header_length() + segment.payload.size());
  segment.emit(out, src, dst);
  counters_.bytes_out += out.size() - start;
  outbound_.end_frame();
  ++counters_.frames_out;
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

NetStack::TcpEntry* NetStack::find_tcp(FlowId id) {
  auto it = tcp_.find(id);
  return it == tcp_.end() || it->second->close_reported ? nullptr : it->second.get();
}

const NetStack::TcpEntry* NetStack::find_tcp(FlowId id) const {
  auto it = tcp_.find(id);
  return it == tcp_.end() || it->second->close_reported ? nullptr : it->second.get();
}

void NetStack::tcp_accept(FlowId id, Instant now) {
  if (auto* e = find_tcp(id)) {
    e->connection.accept(now);
    mark_dirty(*e);
  }
}

void NetStack::tcp_refuse(FlowId id) {
  if (auto* e = find_tcp(id)) {
    e->connection.refuse();
    mark_dirty(*e);
  }
}

ByteSpan NetStack::tcp_readable(FlowId id) const {
  const auto* e = find_tcp(id);
  return e ? e->connection.readable() : ByteSpan();
}

void NetStack::tcp_consume(FlowId id, std::size_t n) {
  if (auto* e = find_tcp(id)) {
    e->connection.consume(std::min(n, e->connection.readable().size()));
    mark_dirty(*e);
  }
}

bool NetStack::tcp_guest_finished(FlowId id) const {
  const auto* e = find_tcp(id);
  return e && e->connection.guest_finished();
}

std::size_t NetStack::tcp_send_space(FlowId id) const {
  const auto* e = find_tcp(id);
  return e ? e->connection.send_space() : 0;
}

std::size_t NetStack::tcp_send(FlowId id, ByteSpan data) {
  auto* e = find_tcp(id);
  if (!e) return 0;
  std::size_t taken = e->connection.send(data);
  if (e->connection.send_space() == 0) e->wants_writable = true;
  mark_dirty(*e);
  return taken;
}

void NetStack::tcp_finish(FlowId id) {
  if (auto* e = find_tcp(id)) {
    e->connection.finish_sending();
    mark_dirty(*e);
  }
}

void NetStack::tcp_abort(FlowId id) {
  if (auto* e = find_tcp(id)) {
    e->connection.abort();
    mark_dirty(*e);
  }
}

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
