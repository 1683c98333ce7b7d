#include "daemon/net/wire/ipv4.hpp"

#include <cassert>

#include "daemon/net/wire/checksum.hpp"

namespace sandboxd::net::wire {

namespace {
constexpr std::uint16_t kFlagDontFragment = 0x4000;
constexpr std::uint16_t kFlagMoreFragments = 0x2000;
constexpr std::uint16_t kOffsetMask = 0x1fff;
}  // namespace

Expected<Ipv4Repr> Ipv4Repr::parse(ByteSpan packet) {
  if (packet.size() < kMinHeaderLength) return parse_error("ipv4: packet is shorter than its header");
  ByteReader r(packet);
  const std::uint8_t version_ihl = r.u8();
  if ((version_ihl >> 4) != 4) return parse_error("ipv4: version is not 4");
  const std::size_t header_length = std::size_t{version_ihl & 0x0fu} * 4;
  if (header_length < kMinHeaderLength) return parse_error("ipv4: header length field is below 5");
  if (header_length > packet.size()) return parse_error("ipv4: header is longer than the packet");

  Ipv4Repr ip;
  ip.tos = r.u8();
  const std::size_t total_length = r.u16();
  if (total_length < header_length) return parse_error("ipv4: total length is shorter than the header");
  if (total_length > packet.size()) return parse_error("ipv4: total length exceeds the packet");
  if (internet_checksum(packet.first(header_length)) != 0) return parse_error("ipv4: header checksum is wrong");

  ip.identification = r.u16();
  const std::uint16_t flags_offset = r.u16();
  ip.dont_fragment = (flags_offset & kFlagDontFragment) != 0;
  ip.more_fragments = (flags_offset & kFlagMoreFragments) != 0;
  ip.fragment_offset = static_cast<std::uint16_t>((flags_offset & kOffsetMask) * 8);
  ip.ttl = r.u8();
  ip.protocol = static_cast<IpProtocol>(r.u8());
  r.skip(2);  // checksum, verified above
  ip.src = Ipv4Address::read(r);
  ip.dst = Ipv4Address::read(r);
  ip.options = packet.subspan(kMinHeaderLength, header_length - kMinHeaderLength);
  ip.payload = packet.subspan(header_length, total_length - header_length);
  return ip;
}

void Ipv4Repr::emit_header(Bytes& out, std::size_t payload_length) const {
  assert(payload_length <= kMaxTotalLength - kMinHeaderLength);
  assert(fragment_offset % 8 == 0);
  const std::size_t start = out.size();
  ByteWriter w(out);
  w.u8(0x45);
  w.u8(tos);
  w.u16(static_cast<std::uint16_t>(kMinHeaderLength + payload_length));
  w.u16(identification);
  std::uint16_t flags_offset = static_cast<std::uint16_t>((fragment_offset / 8) & kOffsetMask);
  if (dont_fragment) flags_offset |= kFlagDontFragment;
  if (more_fragments) flags_offset |= kFlagMoreFragments;
  w.u16(flags_offset);
  w.u8(ttl);
  w.u8(static_cast<std::uint8_t>(protocol));
  w.u16(0);
  src.write(w);
  dst.write(w);
  w.patch_u16(start + 10, internet_checksum(ByteSpan(out).subspan(start, kMinHeaderLength)));
}

void Ipv4Repr::emit(Bytes& out) const {
  emit_header(out, payload.size());
  ByteWriter(out).bytes(payload);
}

}  // namespace sandboxd::net::wire
