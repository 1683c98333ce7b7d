// The per-sandbox stack driven frame by frame, with a simulated clock: what a
// guest sees of the gateway (ARP, DHCP, ping), how its flows surface as
// events, and how hostile frames are dropped and counted.
#include "daemon/net/stack/net_stack.hpp"

#include <catch2/catch.hpp>

#include "tests/unit/net/stack_test_guest.hpp"

namespace sandboxd::net {
namespace {

using test::FakeGuest;
using test::SentFrame;
using namespace std::chrono_literals;
using wire::Ipv4Address;

const Ipv4Address kRemote{{93, 184, 216, 34}};

Bytes text(std::string_view s) { return Bytes(reinterpret_cast<const std::byte*>(s.data()),
                                              reinterpret_cast<const std::byte*>(s.data()) + s.size()); }

std::vector<StackEvent> events_of(NetStack& stack, StackEvent::Kind kind) {
  std::vector<StackEvent> out;
  for (auto& e : stack.take_events())
    if (e.kind == kind) out.push_back(std::move(e));
  return out;
}

wire::TcpRepr syn(std::uint16_t port, std::uint32_t iss, std::uint16_t mss = 1460) {
  wire::TcpRepr s;
  s.src_port = port;
  s.dst_port = 80;
  s.seq_number = iss;
  s.flags.syn = true;
  s.window = 65535;
  s.options.mss = mss;
  s.options.window_scale = 7;
  return s;
}

wire::TcpRepr ack_segment(std::uint16_t port, std::uint32_t seq, std::uint32_t ack, ByteSpan payload = {},
                          std::uint16_t window = 1024) {
  wire::TcpRepr s;
  s.src_port = port;
  s.dst_port = 80;
  s.seq_number = seq;
  s.ack_number = ack;
  s.flags.ack = true;
  s.window = window;  // scaled by 2^7
  s.payload = payload;
  return s;
}

// Opens a connection from the guest and has the egress side accept it; returns
// its id and the stack's initial sequence number.
std::pair<FlowId, std::uint32_t> establish(NetStack& stack, FakeGuest& guest, std::uint16_t port, std::uint32_t iss) {
  guest.send_tcp(syn(port, iss), kRemote);
  auto opens = events_of(stack, StackEvent::Kind::kTcpOpen);
  REQUIRE(opens.size() == 1);
  CHECK(opens[0].key == FlowKey{stack.config().guest_ip, port, kRemote, 80});
  CHECK(guest.poll().empty());  // nothing is answered before the egress decision
  stack.tcp_accept(opens[0].id, guest.now);
  auto frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  const wire::TcpRepr& synack = *frames[0].tcp;
  CHECK(synack.flags.syn);
  CHECK(synack.flags.ack);
  CHECK(synack.ack_number == iss + 1);
  CHECK(synack.options.mss == stack.config().mtu - 40);
  CHECK(frames[0].ip->src == kRemote);
  CHECK(frames[0].eth.dst == stack.config().guest_mac);
  guest.send_tcp(ack_segment(port, iss + 1, synack.seq_number + 1), kRemote);
  guest.poll();
  return {opens[0].id, synack.seq_number + 1};
}

}  // namespace

TEST_CASE("stack: answers ARP for any address but the guest's own, with the gateway's MAC") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  for (Ipv4Address target : {config.gateway_ip, Ipv4Address{{10, 0, 2, 77}}, kRemote}) {
    wire::ArpRepr request{wire::ArpOperation::kRequest, config.guest_mac, config.guest_ip, {}, target};
    Bytes arp;
    request.emit(arp);
    guest.send_frame(guest.ethernet(wire::EtherType::kArp, arp, wire::MacAddress::broadcast()));
    auto frames = guest.poll();
    REQUIRE(frames.size() == 1);
    REQUIRE(frames[0].arp);
    CHECK(frames[0].arp->operation == wire::ArpOperation::kReply);
    CHECK(frames[0].arp->sender_ip == target);
    CHECK(frames[0].arp->sender_mac == config.gateway_mac);
    CHECK(frames[0].arp->target_mac == config.guest_mac);
    CHECK(frames[0].eth.dst == config.guest_mac);
  }
  // The guest's own address, and a duplicate-address probe, get no answer.
  for (auto [sender, target] : {std::pair{config.guest_ip, config.guest_ip}, std::pair{Ipv4Address{}, config.guest_ip}}) {
    wire::ArpRepr probe{wire::ArpOperation::kRequest, config.guest_mac, sender, {}, target};
    Bytes arp;
    probe.emit(arp);
    guest.send_frame(guest.ethernet(wire::EtherType::kArp, arp, wire::MacAddress::broadcast()));
    CHECK(guest.poll().empty());
  }
  CHECK(stack.counters().arp_replies == 3);
}

TEST_CASE("stack: a DHCP exchange gives the guest its address, router, DNS server and MTU") {
  StackConfig config;
  config.mtu = 65520;
  NetStack stack(config);
  FakeGuest guest(stack);

  auto exchange = [&](wire::DhcpMessageType type, std::optional<Ipv4Address> requested) {
    wire::DhcpRepr request;
    request.xid = 0x1234abcd;
    request.chaddr = config.guest_mac;
    request.message_type = type;
    request.requested_ip = requested;
    if (type == wire::DhcpMessageType::kRequest) request.server_id = config.gateway_ip;
    Bytes message;
    request.emit(message);
    guest.send_udp(68, Ipv4Address::broadcast(), 67, message, Ipv4Address{});
    auto frames = guest.poll();
    REQUIRE(frames.size() == 1);
    REQUIRE(frames[0].udp);
    CHECK(frames[0].udp->src_port == 67);
    CHECK(frames[0].udp->dst_port == 68);
    CHECK(frames[0].ip->dst == Ipv4Address::broadcast());
    auto reply = wire::DhcpRepr::parse(frames[0].payload);
    REQUIRE(reply);
    CHECK(reply->xid == 0x1234abcd);
    return *reply;
  };

  auto offer = exchange(wire::DhcpMessageType::kDiscover, std::nullopt);
  CHECK(offer.message_type == wire::DhcpMessageType::kOffer);
  CHECK(offer.yiaddr == config.guest_ip);
  CHECK(offer.subnet_mask == Ipv4Address{{255, 255, 255, 0}});
  CHECK(offer.routers == std::vector{config.gateway_ip});
  CHECK(offer.dns_servers == std::vector{config.gateway_ip});
  CHECK(offer.interface_mtu == 65520);
  CHECK(offer.server_id == config.gateway_ip);
  CHECK(offer.lease_time == 86400u);

  auto ack = exchange(wire::DhcpMessageType::kRequest, config.guest_ip);
  CHECK(ack.message_type == wire::DhcpMessageType::kAck);
  CHECK(ack.yiaddr == config.guest_ip);

  auto nak = exchange(wire::DhcpMessageType::kRequest, Ipv4Address{{10, 0, 2, 99}});
  CHECK(nak.message_type == wire::DhcpMessageType::kNak);
  CHECK(stack.counters().dhcp_replies == 3);
}

TEST_CASE("stack: DHCP from another hardware address is ignored") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  wire::DhcpRepr request;
  request.chaddr = wire::MacAddress{{0x52, 0x54, 0, 0, 0, 9}};
  request.message_type = wire::DhcpMessageType::kDiscover;
  Bytes message;
  request.emit(message);
  guest.send_udp(68, Ipv4Address::broadcast(), 67, message, Ipv4Address{});
  CHECK(guest.poll().empty());
}

TEST_CASE("stack: the gateway answers ping, other ICMP is dropped and counted") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  Bytes data = text("ping payload 0123456789");
  wire::IcmpRepr echo{wire::IcmpType::kEchoRequest, 0, 0x77, 3, data};
  Bytes icmp;
  echo.emit(icmp);
  guest.send_frame(guest.ipv4(wire::IpProtocol::kIcmp, icmp, config.gateway_ip));
  auto frames = guest.poll();
  REQUIRE(frames.size() == 1);
  REQUIRE(frames[0].icmp);
  CHECK(frames[0].icmp->type == wire::IcmpType::kEchoReply);
  CHECK(frames[0].icmp->identifier == 0x77);
  CHECK(frames[0].icmp->sequence == 3);
  CHECK(frames[0].payload == data);
  CHECK(frames[0].ip->src == config.gateway_ip);

  guest.send_frame(guest.ipv4(wire::IpProtocol::kIcmp, icmp, kRemote));
  CHECK(guest.poll().empty());
  CHECK(stack.counters().drop(DropReason::kUnsupportedIcmp) == 1);
}

TEST_CASE("stack: malformed, spoofed and unsupported frames are dropped and counted by reason") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  guest.send_frame(Bytes(5));  // shorter than an Ethernet header
  Bytes ipv6 = guest.ethernet(wire::EtherType::kIpv6, Bytes(40));
  guest.send_frame(ipv6);
  Bytes tcp_segment;
  syn(1000, 1).emit(tcp_segment, config.guest_ip, kRemote);
  // Another guest's MAC, then the guest's MAC with another source address.
  guest.send_frame(guest.ethernet(wire::EtherType::kIpv4, Bytes(20), {}, wire::MacAddress{{2, 0, 0, 0, 0, 9}}));
  guest.send_frame(guest.ipv4(wire::IpProtocol::kTcp, tcp_segment, kRemote, Ipv4Address{{10, 0, 2, 16}}));
  // A TCP segment whose checksum no longer matches.
  Bytes corrupt = guest.ipv4(wire::IpProtocol::kTcp, tcp_segment, kRemote);
  corrupt[corrupt.size() - 1] ^= std::byte{0x40};
  guest.send_frame(corrupt);
  // An IPv4 header with a bad checksum.
  Bytes bad_ip = guest.ipv4(wire::IpProtocol::kTcp, tcp_segment, kRemote);
  bad_ip[14 + 10] ^= std::byte{0xff};
  guest.send_frame(bad_ip);
  // A fragment.
  wire::Ipv4Repr fragment;
  fragment.src = config.guest_ip;
  fragment.dst = kRemote;
  fragment.protocol = wire::IpProtocol::kUdp;
  fragment.more_fragments = true;
  Bytes frag_payload(64), frag_packet;
  fragment.payload = frag_payload;
  fragment.emit(frag_packet);
  guest.send_frame(guest.ethernet(wire::EtherType::kIpv4, frag_packet));
  // A frame to another MAC.
  guest.send_frame(guest.ethernet(wire::EtherType::kArp, Bytes(28), wire::MacAddress{{2, 0, 0, 0, 0, 7}}));

  CHECK(guest.poll().empty());
  CHECK(stack.take_events().empty());
  const NetCounters& c = stack.counters();
  CHECK(c.frames_in == 8);
  CHECK(c.drop(DropReason::kMalformedEthernet) == 1);
  CHECK(c.drop(DropReason::kUnsupportedEtherType) == 1);
  CHECK(c.drop(DropReason::kSpoofedSource) == 2);
  CHECK(c.drop(DropReason::kMalformedTcp) == 1);
  CHECK(c.drop(DropReason::kMalformedIpv4) == 1);
  CHECK(c.drop(DropReason::kFragment) == 1);
  CHECK(c.drop(DropReason::kNotForGateway) == 1);
  CHECK(c.total_drops() == 8);
}

TEST_CASE("stack: a TCP connection opens only once the egress side accepts it") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  auto [id, our_seq] = establish(stack, guest, 40000, 1000);
  CHECK(stack.tcp_connection_count() == 1);
  CHECK(stack.counters().tcp_connections_opened == 1);
  (void)id;
  (void)our_seq;
}

TEST_CASE("stack: a refused connection is answered with RST and reported closed") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  guest.send_tcp(syn(40001, 5000), kRemote);
  auto opens = events_of(stack, StackEvent::Kind::kTcpOpen);
  REQUIRE(opens.size() == 1);
  stack.tcp_refuse(opens[0].id);
  auto frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tcp->flags.rst);
  CHECK(frames[0].tcp->ack_number == 5001);
  auto closed = events_of(stack, StackEvent::Kind::kTcpClosed);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "refused");
  CHECK(stack.tcp_connection_count() == 0);
  CHECK(stack.counters().tcp_connections_refused == 1);
}

TEST_CASE("stack: data flows both ways and both FINs close the connection") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  auto [id, our_seq] = establish(stack, guest, 40002, 7000);
  stack.take_events();

  // Guest -> upstream.
  Bytes request = text("GET / HTTP/1.0\r\n\r\n");
  guest.send_tcp(ack_segment(40002, 7001, our_seq, request), kRemote);
  auto frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tcp->ack_number == 7001 + request.size());  // one ACK for the batch
  auto readable = events_of(stack, StackEvent::Kind::kTcpReadable);
  REQUIRE(readable.size() == 1);
  ByteSpan got = stack.tcp_readable(id);
  CHECK(Bytes(got.begin(), got.end()) == request);
  stack.tcp_consume(id, got.size());

  // Upstream -> guest, then the upstream closes.
  Bytes response(5000, std::byte{'x'});
  CHECK(stack.tcp_send(id, response) == response.size());
  stack.tcp_finish(id);
  frames = FakeGuest::tcp_only(guest.poll());
  Bytes received;
  bool fin = false;
  for (auto& f : frames) {
    CHECK(f.tcp->seq_number == our_seq + received.size());
    CHECK(f.payload.size() <= config.mtu - 40u);
    received.insert(received.end(), f.payload.begin(), f.payload.end());
    fin = fin || f.tcp->flags.fin;
  }
  CHECK(received == response);
  CHECK(fin);

  // The guest acknowledges everything and closes its side.
  std::uint32_t after_fin = our_seq + static_cast<std::uint32_t>(response.size()) + 1;
  wire::TcpRepr last = ack_segment(40002, 7001 + static_cast<std::uint32_t>(request.size()), after_fin);
  last.flags.fin = true;
  guest.send_tcp(last, kRemote);
  frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tcp->ack_number == 7001 + request.size() + 1);
  auto closed = events_of(stack, StackEvent::Kind::kTcpClosed);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "closed");
  CHECK(closed[0].id == id);
  // TIME_WAIT ends by itself.
  guest.advance(config.tcp.time_wait + 1s);
  guest.poll();
  CHECK(stack.tcp_connection_count() == 0);
}

TEST_CASE("stack: a RST from the guest ends the connection; a segment for no connection gets a RST") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  auto [id, our_seq] = establish(stack, guest, 40003, 100);
  stack.take_events();
  wire::TcpRepr rst = ack_segment(40003, 101, our_seq);
  rst.flags.rst = true;
  guest.send_tcp(rst, kRemote);
  guest.poll();
  auto closed = events_of(stack, StackEvent::Kind::kTcpClosed);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "reset by guest");
  CHECK(stack.tcp_connection_count() == 0);
  CHECK(stack.tcp_send(id, text("late")) == 0);  // the id is dead

  guest.send_tcp(ack_segment(40004, 55, 66, text("stray")), kRemote);
  auto frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tcp->flags.rst);
  CHECK(frames[0].tcp->seq_number == 66);
  CHECK(stack.counters().drop(DropReason::kTcpNoConnection) == 1);
}

TEST_CASE("stack: the egress side's abort sends RST to the guest") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  auto [id, our_seq] = establish(stack, guest, 40005, 100);
  stack.take_events();
  stack.tcp_abort(id);
  auto frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tcp->flags.rst);
  CHECK(frames[0].tcp->seq_number == our_seq);
  auto closed = events_of(stack, StackEvent::Kind::kTcpClosed);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "aborted");
}

TEST_CASE("stack: a lost segment is retransmitted after the RTO") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  auto [id, our_seq] = establish(stack, guest, 40006, 100);
  stack.take_events();
  Bytes data = text("hello, guest");
  stack.tcp_send(id, data);
  auto first = FakeGuest::tcp_only(guest.poll());
  REQUIRE(first.size() == 1);
  CHECK(first[0].payload == data);
  // The guest never acknowledges; nothing is sent again before the deadline.
  auto deadline = stack.next_deadline();
  REQUIRE(deadline);
  CHECK(FakeGuest::tcp_only(guest.poll()).empty());
  guest.now = *deadline;
  auto again = FakeGuest::tcp_only(guest.poll());
  REQUIRE(again.size() == 1);
  CHECK(again[0].tcp->seq_number == our_seq);
  CHECK(again[0].payload == data);
  CHECK(stack.counters().tcp_retransmitted_segments == 1);
}

TEST_CASE("stack: an out-of-order segment is dropped and answered with a duplicate ACK") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  auto [id, our_seq] = establish(stack, guest, 40007, 100);
  stack.take_events();
  Bytes a = text("first-"), b = text("second");
  guest.send_tcp(ack_segment(40007, 101 + static_cast<std::uint32_t>(a.size()), our_seq, b), kRemote);
  auto frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tcp->ack_number == 101);
  CHECK(stack.tcp_readable(id).empty());
  guest.send_tcp(ack_segment(40007, 101, our_seq, a), kRemote);
  guest.send_tcp(ack_segment(40007, 101 + static_cast<std::uint32_t>(a.size()), our_seq, b), kRemote);
  frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(!frames.empty());
  CHECK(frames.back().tcp->ack_number == 101 + a.size() + b.size());
  ByteSpan got = stack.tcp_readable(id);
  CHECK(std::string(as_chars(got)) == "first-second");
}

TEST_CASE("stack: a guest window of zero stops sending until it opens; the send buffer pushes back") {
  StackConfig config;
  config.tcp.send_buffer = 64 * 1024;
  NetStack stack(config);
  FakeGuest guest(stack);
  auto [id, our_seq] = establish(stack, guest, 40008, 100);
  stack.take_events();
  // The guest closes its window.
  guest.send_tcp(ack_segment(40008, 101, our_seq, {}, 0), kRemote);
  guest.poll();
  Bytes data(100 * 1024, std::byte{7});
  std::size_t taken = stack.tcp_send(id, data);
  CHECK(taken == 64 * 1024);  // bounded by the send buffer
  CHECK(stack.tcp_send_space(id) == 0);
  auto frames = FakeGuest::tcp_only(guest.poll());
  std::size_t sent = 0;
  for (auto& f : frames) sent += f.payload.size();
  CHECK(sent <= 1);  // at most a window probe
  // The window opens: data flows, and once acknowledged the egress side may send again.
  guest.send_tcp(ack_segment(40008, 101, our_seq, {}, 1024), kRemote);
  frames = FakeGuest::tcp_only(guest.poll());
  std::uint32_t highest = our_seq;
  for (auto& f : frames) highest = std::max(highest, f.tcp->seq_number + static_cast<std::uint32_t>(f.payload.size()));
  CHECK(highest - our_seq == 64 * 1024);
  guest.send_tcp(ack_segment(40008, 101, highest, {}, 1024), kRemote);
  guest.poll();
  auto writable = events_of(stack, StackEvent::Kind::kTcpWritable);
  REQUIRE(writable.size() == 1);
  CHECK(stack.tcp_send_space(id) == 64 * 1024);
}

TEST_CASE("stack: at the connection limit a SYN evicts the oldest half-open connection, else gets RST") {
  StackConfig config;
  config.max_tcp_connections = 3;
  NetStack stack(config);
  FakeGuest guest(stack);
  // A flood of half-open connections: the newest always get in.
  for (std::uint16_t port = 50000; port < 50005; ++port) guest.send_tcp(syn(port, 1), kRemote);
  auto events = stack.take_events();
  std::vector<FlowKey> evicted;
  std::vector<FlowId> opened;
  for (auto& e : events) {
    if (e.kind == StackEvent::Kind::kTcpClosed) evicted.push_back(e.key);
    if (e.kind == StackEvent::Kind::kTcpOpen) opened.push_back(e.id);
  }
  CHECK(opened.size() == 5);
  REQUIRE(evicted.size() == 2);
  CHECK(evicted[0].guest_port == 50000);
  CHECK(evicted[1].guest_port == 50001);
  CHECK(stack.counters().tcp_embryonic_evicted == 2);
  CHECK(stack.tcp_connection_count() == 3);
  auto frames = FakeGuest::tcp_only(guest.take_frames());
  REQUIRE(frames.size() == 2);  // the evicted are reset
  for (auto& f : frames) CHECK(f.tcp->flags.rst);

  // Once every connection is established, a new SYN is refused.
  for (std::uint16_t port = 50002; port < 50005; ++port) {
    FlowId id = opened[port - 50000];
    stack.tcp_accept(id, guest.now);
    std::optional<std::uint32_t> our_seq;
    for (auto& f : FakeGuest::tcp_only(guest.poll()))
      if (f.tcp->flags.syn && f.tcp->dst_port == port) our_seq = f.tcp->seq_number + 1;
    REQUIRE(our_seq);
    guest.send_tcp(ack_segment(port, 2, *our_seq), kRemote);
  }
  guest.poll();
  stack.take_events();
  guest.send_tcp(syn(50009, 1), kRemote);
  CHECK(stack.take_events().empty());
  frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tcp->flags.rst);
  CHECK(stack.counters().drop(DropReason::kTcpConnectionLimit) == 1);
  CHECK(stack.tcp_connection_count() == 3);
}

TEST_CASE("stack: at the connection limit a SYN takes the place of a connection in TIME_WAIT") {
  // A guest opening short connections faster than TIME_WAIT ends must not
  // find the table full of closed ones.
  StackConfig config;
  config.max_tcp_connections = 2;
  NetStack stack(config);
  FakeGuest guest(stack);
  std::size_t closed = 0;
  for (std::uint16_t port : {40100, 40101}) {
    auto [id, our_seq] = establish(stack, guest, port, 100);
    stack.tcp_finish(id);  // the upstream closes first, so TIME_WAIT is ours
    guest.poll();
    wire::TcpRepr fin = ack_segment(port, 101, our_seq + 1);
    fin.flags.fin = true;
    guest.send_tcp(fin, kRemote);
    guest.poll();
    closed += events_of(stack, StackEvent::Kind::kTcpClosed).size();
  }
  REQUIRE(closed == 2);
  REQUIRE(stack.tcp_connection_count() == 2);  // both in TIME_WAIT

  guest.send_tcp(syn(40102, 1), kRemote);
  auto opens = events_of(stack, StackEvent::Kind::kTcpOpen);
  REQUIRE(opens.size() == 1);
  CHECK(opens[0].key.guest_port == 40102);
  CHECK(stack.counters().tcp_time_wait_reclaimed == 1);
  CHECK(stack.counters().drop(DropReason::kTcpConnectionLimit) == 0);
  CHECK(stack.tcp_connection_count() == 2);
  CHECK(FakeGuest::tcp_only(guest.poll()).empty());  // no RST: it waits for the egress decision
  // The reclaimed one was the oldest: a segment for it now gets a RST.
  guest.send_tcp(ack_segment(40100, 102, 1), kRemote);
  auto frames = FakeGuest::tcp_only(guest.poll());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tcp->flags.rst);
}

TEST_CASE("stack: UDP datagrams become flows that carry replies and expire when idle") {
  StackConfig config;
  config.max_udp_flows = 2;
  NetStack stack(config);
  FakeGuest guest(stack);
  guest.send_udp(3333, kRemote, 7, text("one"));
  guest.send_udp(3333, kRemote, 7, text("two"));
  auto events = stack.take_events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == StackEvent::Kind::kUdpDatagram);
  CHECK(events[0].new_flow);
  CHECK(!events[1].new_flow);
  CHECK(events[0].id == events[1].id);
  CHECK(events[1].payload == text("two"));

  stack.udp_send(events[0].id, text("reply"), guest.now);
  auto frames = guest.poll();
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].udp->src_port == 7);
  CHECK(frames[0].udp->dst_port == 3333);
  CHECK(frames[0].ip->src == kRemote);
  CHECK(frames[0].payload == text("reply"));

  // The flow limit.
  guest.send_udp(3334, kRemote, 7, text("x"));
  guest.send_udp(3335, kRemote, 7, text("y"));
  CHECK(stack.take_events().size() == 1);
  CHECK(stack.counters().drop(DropReason::kUdpFlowLimit) == 1);

  // Idle expiry.
  guest.advance(config.udp_idle_timeout + 1s);
  guest.poll();
  auto closed = stack.take_events();
  CHECK(closed.size() == 2);
  for (auto& e : closed) CHECK(e.kind == StackEvent::Kind::kUdpClosed);
  CHECK(stack.udp_flow_count() == 0);
}

TEST_CASE("stack: a UDP reply larger than the link MTU is not sent") {
  StackConfig config;
  NetStack stack(config);
  FakeGuest guest(stack);
  guest.send_udp(3333, kRemote, 9, text("q"));
  auto events = stack.take_events();
  REQUIRE(events.size() == 1);
  stack.udp_send(events[0].id, Bytes(config.mtu), guest.now);
  CHECK(guest.poll().empty());
  CHECK(stack.counters().udp_datagrams_too_big == 1);
}

TEST_CASE("stack: bulk transfer both ways at a 65520-byte MTU") {
  StackConfig config;
  config.mtu = 65520;
  NetStack stack(config);
  FakeGuest guest(stack);
  wire::TcpRepr opening = syn(41000, 1, 65480);
  guest.send_tcp(opening, kRemote);
  auto opens = events_of(stack, StackEvent::Kind::kTcpOpen);
  REQUIRE(opens.size() == 1);
  FlowId id = opens[0].id;
  stack.tcp_accept(id, guest.now);
  auto synack = FakeGuest::tcp_only(guest.poll());
  REQUIRE(synack.size() == 1);
  std::uint32_t our_seq = synack[0].tcp->seq_number + 1;
  guest.send_tcp(ack_segment(41000, 2, our_seq, {}, 0xffff), kRemote);
  guest.poll();

  // Upstream -> guest: 8 MiB, the guest acknowledging each batch with a large window.
  const std::size_t total = 8u << 20;
  std::size_t handed = 0, received = 0;
  std::uint64_t checksum_in = 0, checksum_out = 0;
  Bytes chunk(256 * 1024);
  for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<std::byte>(i * 7 + 3);
  int rounds = 0;
  while (received < total && rounds++ < 10000) {
    while (handed < total && stack.tcp_send_space(id) > 0) {
      std::size_t n = std::min({chunk.size(), stack.tcp_send_space(id), total - handed});
      for (std::size_t i = 0; i < n; ++i) checksum_in += static_cast<std::uint8_t>(chunk[i]) * ((handed + i) % 251 + 1);
      handed += stack.tcp_send(id, ByteSpan(chunk).first(n));
    }
    auto frames = FakeGuest::tcp_only(guest.poll());
    for (auto& f : frames) {
      if (f.payload.empty()) continue;
      REQUIRE(f.tcp->seq_number == our_seq + received);
      CHECK(f.payload.size() <= 65480u);
      for (std::size_t i = 0; i < f.payload.size(); ++i)
        checksum_out += static_cast<std::uint8_t>(f.payload[i]) * ((received + i) % 251 + 1);
      received += f.payload.size();
    }
    guest.send_tcp(ack_segment(41000, 2, our_seq + static_cast<std::uint32_t>(received), {}, 0xffff), kRemote);
    stack.take_events();
  }
  CHECK(received == total);
  CHECK(checksum_in == checksum_out);

  // Guest -> upstream: 8 MiB in MSS-sized segments, consumed as it arrives.
  std::uint32_t seq = 2;
  std::size_t sent = 0, consumed = 0;
  rounds = 0;
  while (consumed < total && rounds++ < 10000) {
    // Send what the advertised window allows (the stack's last ACK tells it).
    for (int burst = 0; burst < 4 && sent < total; ++burst) {
      std::size_t n = std::min<std::size_t>(65480, total - sent);
      guest.send_tcp(ack_segment(41000, seq, our_seq + static_cast<std::uint32_t>(received), ByteSpan(chunk).first(std::min(n, chunk.size())), 0xffff), kRemote);
      guest.poll();
      ByteSpan r = stack.tcp_readable(id);
      std::size_t delta = r.size();
      sent += delta;
      seq += static_cast<std::uint32_t>(delta);
      consumed += delta;
      stack.tcp_consume(id, delta);
      if (delta == 0) break;
    }
    guest.poll();
  }
  CHECK(consumed == total);
  CHECK(stack.counters().tcp_retransmitted_segments == 0);
}

}  // namespace sandboxd::net
