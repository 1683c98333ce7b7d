#include "daemon/net/wire/arp.hpp"

namespace sandboxd::net::wire {

namespace {
constexpr std::uint16_t kHardwareEthernet = 1;
constexpr std::uint16_t kProtocolIpv4 = 0x0800;
}  // namespace

Expected<ArpRepr> ArpRepr::parse(ByteSpan packet) {
  if (packet.size() < kLength) return parse_error("arp: packet is shorter than 28 bytes");
  ByteReader r(packet);
  if (r.u16() != kHardwareEthernet) return parse_error("arp: hardware type is not Ethernet");
  if (r.u16() != kProtocolIpv4) return parse_error("arp: protocol type is not IPv4");
  const std::uint8_t hlen = r.u8();
  const std::uint8_t plen = r.u8();
  if (hlen != 6 || plen != 4) return parse_error("arp: address lengths are not 6 and 4");
  const std::uint16_t op = r.u16();
  if (op != 1 && op != 2) return parse_error("arp: operation is neither request nor reply");
  ArpRepr a;
  a.operation = static_cast<ArpOperation>(op);
  a.sender_mac = MacAddress::read(r);
  a.sender_ip = Ipv4Address::read(r);
  a.target_mac = MacAddress::read(r);
  a.target_ip = Ipv4Address::read(r);
  return a;
}

void ArpRepr::emit(Bytes& out) const {
  ByteWriter w(out);
  w.u16(kHardwareEthernet);
  w.u16(kProtocolIpv4);
  w.u8(6);
  w.u8(4);
  w.u16(static_cast<std::uint16_t>(operation));
  sender_mac.write(w);
  sender_ip.write(w);
  target_mac.write(w);
  target_ip.write(w);
}

}  // namespace sandboxd::net::wire
