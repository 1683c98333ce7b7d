// A fake guest for the stack tests: builds the frames a guest's kernel would
// send (Ethernet, IPv4, then ARP, ICMP, UDP, DHCP or TCP) and parses what the
// stack sends back, so tests speak in segments and datagrams, not bytes.
// GuestFrames is the building and parsing alone, for tests that reach the
// stack some other way (through a SandboxNetwork's link); FakeGuest drives a
// NetStack directly.
#pragma once

#include <catch2/catch.hpp>
#include <optional>
#include <vector>

#include "daemon/net/stack/net_stack.hpp"
#include "daemon/net/wire/arp.hpp"
#include "daemon/net/wire/dhcp.hpp"
#include "daemon/net/wire/ethernet.hpp"
#include "daemon/net/wire/icmp.hpp"
#include "daemon/net/wire/ipv4.hpp"
#include "daemon/net/wire/tcp.hpp"
#include "daemon/net/wire/udp.hpp"

namespace sandboxd::net::test {

using namespace std::chrono_literals;

// One frame the stack sent, parsed down to its transport.
struct SentFrame {
  Bytes bytes;
  wire::EthernetRepr eth;
  std::optional<wire::Ipv4Repr> ip;
  std::optional<wire::TcpRepr> tcp;
  std::optional<wire::UdpRepr> udp;
  std::optional<wire::ArpRepr> arp;
  std::optional<wire::IcmpRepr> icmp;
  Bytes payload;  // of the transport
};

class GuestFrames {
 public:
  explicit GuestFrames(const StackConfig& config) : config_(config) {}

  Bytes ethernet(wire::EtherType type, ByteSpan payload, wire::MacAddress dst = {}, wire::MacAddress src = {}) const {
    Bytes out;
    wire::EthernetRepr eth{dst.is_zero() ? config_.gateway_mac : dst, src.is_zero() ? config_.guest_mac : src, type,
                           payload};
    eth.emit(out);
    return out;
  }

  Bytes ipv4(wire::IpProtocol protocol, ByteSpan payload, wire::Ipv4Address dst,
             std::optional<wire::Ipv4Address> src = std::nullopt) const {
    wire::Ipv4Repr ip;
    ip.src = src.value_or(config_.guest_ip);
    ip.dst = dst;
    ip.protocol = protocol;
    ip.payload = payload;
    Bytes packet;
    ip.emit(packet);
    return ethernet(wire::EtherType::kIpv4, packet);
  }

  Bytes tcp(const wire::TcpRepr& seg, wire::Ipv4Address dst) const {
    Bytes segment;
    seg.emit(segment, config_.guest_ip, dst);
    return ipv4(wire::IpProtocol::kTcp, segment, dst);
  }

  Bytes udp(std::uint16_t src_port, wire::Ipv4Address dst, std::uint16_t dst_port, ByteSpan payload,
            std::optional<wire::Ipv4Address> src = std::nullopt) const {
    wire::Ipv4Address from = src.value_or(config_.guest_ip);
    Bytes datagram;
    wire::UdpRepr{src_port, dst_port, payload}.emit(datagram, from, dst);
    return ipv4(wire::IpProtocol::kUdp, datagram, dst, from);
  }

  // One frame from the stack, parsed down to its transport (checksums checked).
  static SentFrame parse(ByteSpan frame) {
    SentFrame f;
    f.bytes.assign(frame.begin(), frame.end());
    parse_into(f);
    return f;
  }

  static std::vector<SentFrame> tcp_only(std::vector<SentFrame> frames) {
    std::vector<SentFrame> out;
    for (auto& f : frames)
      if (f.tcp) out.push_back(std::move(f));
    return out;
  }

 protected:
  StackConfig config_;

 private:
  static void parse_into(SentFrame& f) {
    auto eth = wire::EthernetRepr::parse(f.bytes);
    REQUIRE(eth);
    f.eth = *eth;
    if (eth->ethertype == wire::EtherType::kArp) {
      auto arp = wire::ArpRepr::parse(eth->payload);
      REQUIRE(arp);
      f.arp = *arp;
      return;
    }
    REQUIRE(eth->ethertype == wire::EtherType::kIpv4);
    auto ip = wire::Ipv4Repr::parse(eth->payload);
    REQUIRE(ip);  // checks the header checksum too
    f.ip = *ip;
    switch (ip->protocol) {
      case wire::IpProtocol::kTcp: {
        auto tcp = wire::TcpRepr::parse(ip->payload, ip->src, ip->dst);
        REQUIRE(tcp);  // and the TCP checksum
        f.tcp = *tcp;
        f.payload.assign(tcp->payload.begin(), tcp->payload.end());
        break;
      }
      case wire::IpProtocol::kUdp: {
        auto udp = wire::UdpRepr::parse(ip->payload, ip->src, ip->dst);
        REQUIRE(udp);
        f.udp = *udp;
        f.payload.assign(udp->payload.begin(), udp->payload.end());
        break;
      }
      case wire::IpProtocol::kIcmp: {
        auto icmp = wire::IcmpRepr::parse(ip->payload);
        REQUIRE(icmp);
        f.icmp = *icmp;
        f.payload.assign(icmp->payload.begin(), icmp->payload.end());
        break;
      }
    }
  }
};

class FakeGuest : public GuestFrames {
 public:
  explicit FakeGuest(NetStack& stack) : GuestFrames(stack.config()), stack_(stack) {}

  Instant now = Instant{} + 1000s;

  void advance(std::chrono::milliseconds d) { now += d; }

  // ---- frames to the stack
  void send_frame(ByteSpan frame) { stack_.receive_frame(frame, now); }
  void send_tcp(const wire::TcpRepr& seg, wire::Ipv4Address dst) { send_frame(tcp(seg, dst)); }
  void send_udp(std::uint16_t src_port, wire::Ipv4Address dst, std::uint16_t dst_port, ByteSpan payload,
                std::optional<wire::Ipv4Address> src = std::nullopt) {
    send_frame(udp(src_port, dst, dst_port, payload, src));
  }

  // ---- frames from the stack
  // Runs the stack's poll and returns every frame it has sent since the last call.
  std::vector<SentFrame> poll() {
    stack_.poll(now);
    return take_frames();
  }

  std::vector<SentFrame> take_frames() {
    std::vector<SentFrame> out;
    stack_.outbound().for_each_frame([&](ByteSpan frame) { out.push_back(parse(frame)); });
    stack_.outbound().clear();
    return out;
  }

 private:
  NetStack& stack_;
};

}  // namespace sandboxd::net::test
