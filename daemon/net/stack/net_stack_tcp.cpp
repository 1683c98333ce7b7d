// NetStack, the guest's TCP connections: the table of connections by key
// and id, opening (with the reclaiming of TIME_WAIT and half-open entries at
// the limit), segments to their connection, the events poll() reports for
// them, the segments they emit, and the egress side's calls.
#include "daemon/net/stack/net_stack.hpp"

#include <algorithm>

#include "daemon/net/wire/ethernet.hpp"

namespace sandboxd::net {
using wire::EthernetRepr;
using wire::EtherType;
using wire::IpProtocol;
using wire::Ipv4Address;
using wire::Ipv4Repr;
using wire::TcpRepr;

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

// Here, where TcpEntry is complete: both need its destructor.
NetStack::NetStack(const StackConfig& config) : config_(config), dhcp_(config_) {}
NetStack::~NetStack() = default;

// ---- input ---------------------------------------------------------------

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

void NetStack::poll_tcp(Instant now) {
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
}

std::optional<Instant> NetStack::next_tcp_deadline() const {
  std::optional<Instant> earliest;
  for (const auto& [id, entry] : tcp_) {
    auto d = entry->connection.next_deadline();
    if (d && (!earliest || *d < *earliest)) earliest = d;
  }
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

}  // namespace sandboxd::net
