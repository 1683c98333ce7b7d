// The per-sandbox stack under a hostile guest and a capricious egress side:
// the input is a script of operations — raw frames, well-formed TCP and UDP
// with fuzzed fields (valid checksums, so they reach the state machines),
// egress calls on live flows, time passing. Checks: no crash or UB, the
// connection and flow limits hold, and every frame the stack emits parses.
#include <set>

#include "daemon/net/stack/net_stack.hpp"
#include "daemon/net/wire/ethernet.hpp"
#include "daemon/net/wire/ipv4.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

namespace {

Bytes frame_for(const StackConfig& c, IpProtocol protocol, ByteSpan transport, Ipv4Address dst) {
  Ipv4Repr ip;
  ip.src = c.guest_ip;
  ip.dst = dst;
  ip.protocol = protocol;
  ip.payload = transport;
  Bytes packet;
  ip.emit(packet);
  Bytes frame;
  EthernetRepr{c.gateway_mac, c.guest_mac, EtherType::kIpv4, packet}.emit(frame);
  return frame;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  StackConfig config;
  config.max_tcp_connections = 8;
  config.max_udp_flows = 8;
  config.tcp.receive_buffer = 16 * 1024;
  config.tcp.send_buffer = 16 * 1024;
  NetStack stack(config);
  Instant now = Instant{} + std::chrono::seconds(100);
  std::vector<FlowId> tcp_ids, udp_ids;
  const Ipv4Address remotes[2] = {Ipv4Address{{93, 184, 216, 34}}, config.gateway_ip};
  Bytes filler(70000, std::byte{0x5a});

  ByteReader r(as_span(data, size));
  auto pick = [](const std::vector<FlowId>& ids, std::uint8_t b) -> FlowId { return ids.empty() ? 0 : ids[b % ids.size()]; };
  while (r.ok() && !r.at_end()) {
    std::uint8_t op = r.u8();
    switch (op % 9) {
      case 0: {  // a raw frame
        std::size_t n = r.u16() % 2048;
        ByteSpan raw = r.take(std::min(n, r.remaining()));
        stack.receive_frame(raw, now);
        break;
      }
      case 1: {  // a TCP segment with fuzzed fields
        TcpRepr seg;
        seg.src_port = static_cast<std::uint16_t>(40000 + r.u8() % 4);
        seg.dst_port = 80;
        seg.seq_number = r.u32();
        seg.ack_number = r.u32();
        std::uint8_t f = r.u8();
        seg.flags = {bool(f & 1), bool(f & 2), bool(f & 4), bool(f & 8), bool(f & 16), false, false, false};
        seg.window = r.u16();
        if (f & 32) seg.options.mss = r.u16();
        if (f & 64) seg.options.window_scale = r.u8();
        seg.payload = ByteSpan(filler).first(r.u16() % 3000);
        Bytes segment;
        seg.emit(segment, config.guest_ip, remotes[f >> 7]);
        stack.receive_frame(frame_for(config, IpProtocol::kTcp, segment, remotes[f >> 7]), now);
        break;
      }
      case 2: {  // a UDP datagram
        std::uint8_t b = r.u8();
        Bytes datagram;
        UdpRepr{static_cast<std::uint16_t>(5000 + b % 12), static_cast<std::uint16_t>(b & 1 ? 53 : 7),
                ByteSpan(filler).first(r.u16() % 1600)}
            .emit(datagram, config.guest_ip, remotes[b >> 7]);
        stack.receive_frame(frame_for(config, IpProtocol::kUdp, datagram, remotes[b >> 7]), now);
        break;
      }
      case 3: now += std::chrono::milliseconds(r.u16()) * 4; break;
      case 4: {  // egress side: a decision
        FlowId id = pick(tcp_ids, r.u8());
        if (r.u8() & 1) stack.tcp_accept(id, now);
        else stack.tcp_refuse(id);
        break;
      }
      case 5: {  // egress side: data
        FlowId id = pick(tcp_ids, r.u8());
        std::size_t n = r.u16();
        stack.tcp_send(id, ByteSpan(filler).first(std::min<std::size_t>(n, filler.size())));
        stack.tcp_consume(id, r.u16());
        require(stack.tcp_readable(id).size() <= config.tcp.receive_buffer);
        break;
      }
      case 6: {  // egress side: endings
        FlowId id = pick(tcp_ids, r.u8());
        if (r.u8() & 1) stack.tcp_finish(id);
        else stack.tcp_abort(id);
        break;
      }
      case 7: {  // egress side: UDP
        FlowId id = pick(udp_ids, r.u8());
        stack.udp_send(id, ByteSpan(filler).first(r.u16() % 70000), now);
        if (r.u8() == 0) stack.udp_close(id);
        break;
      }
      case 8: break;
    }
    stack.poll(now);
    for (const StackEvent& e : stack.take_events()) {
      if (e.kind == StackEvent::Kind::kTcpOpen) tcp_ids.push_back(e.id);
      if (e.kind == StackEvent::Kind::kUdpDatagram && e.new_flow) udp_ids.push_back(e.id);
    }
    require(stack.tcp_connection_count() <= config.max_tcp_connections);
    require(stack.udp_flow_count() <= config.max_udp_flows);
    stack.outbound().for_each_frame([&](ByteSpan frame) {
      auto eth = EthernetRepr::parse(frame);
      require(eth.has_value());
      if (eth->ethertype == EtherType::kIpv4) require(Ipv4Repr::parse(eth->payload).has_value());
    });
    stack.outbound().clear();
  }
  return 0;
}
