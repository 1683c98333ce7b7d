#include "daemon/net/wire/udp.hpp"

#include <cassert>

#include "daemon/net/wire/checksum.hpp"

namespace sandboxd::net::wire {

Expected<UdpRepr> UdpRepr::parse(ByteSpan datagram, Ipv4Address src, Ipv4Address dst) {
  if (datagram.size() < kHeaderLength) return parse_error("udp: datagram is shorter than its header");
  ByteReader r(datagram);
  UdpRepr u;
  u.src_port = r.u16();
  u.dst_port = r.u16();
  const std::size_t length = r.u16();
  const std::uint16_t checksum = r.u16();
  if (length < kHeaderLength) return parse_error("udp: length field is shorter than the header");
  if (length > datagram.size()) return parse_error("udp: length field exceeds the datagram");
  const ByteSpan whole = datagram.first(length);
  if (checksum != 0 && ipv4_transport_checksum(src, dst, IpProtocol::kUdp, whole) != 0) {
    return parse_error("udp: checksum is wrong");
  }
  u.payload = whole.subspan(kHeaderLength);
  return u;
}

void UdpRepr::emit(Bytes& out, Ipv4Address src, Ipv4Address dst) const {
  assert(payload.size() <= kMaxPayloadLength);
  const std::size_t start = out.size();
  ByteWriter w(out);
  w.u16(src_port);
  w.u16(dst_port);
  w.u16(static_cast<std::uint16_t>(kHeaderLength + payload.size()));
  w.u16(0);
  w.bytes(payload);
  std::uint16_t checksum = ipv4_transport_checksum(src, dst, IpProtocol::kUdp, ByteSpan(out).subspan(start));
  if (checksum == 0) checksum = 0xffff;
  w.patch_u16(start + 6, checksum);
}

}  // namespace sandboxd::net::wire
