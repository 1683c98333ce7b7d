#include "daemon/net/wire/ethernet.hpp"

namespace sandboxd::net::wire {

Expected<EthernetRepr> EthernetRepr::parse(ByteSpan frame) {
  if (frame.size() < kHeaderLength) return parse_error("ethernet: frame is shorter than its header");
  ByteReader r(frame);
  EthernetRepr e;
  e.dst = MacAddress::read(r);
  e.src = MacAddress::read(r);
  const std::uint16_t type = r.u16();
  if (type < 0x0600) return parse_error("ethernet: 802.3 length field, not an Ethernet II type");
  e.ethertype = static_cast<EtherType>(type);
  if (e.ethertype == EtherType::kVlan || e.ethertype == EtherType::kQinQ || type == 0x9100) {
    return parse_error("ethernet: VLAN-tagged frames are not supported");
  }
  e.payload = r.rest();
  return e;
}

void EthernetRepr::emit_header(Bytes& out) const {
  ByteWriter w(out);
  dst.write(w);
  src.write(w);
  w.u16(static_cast<std::uint16_t>(ethertype));
}

void EthernetRepr::emit(Bytes& out) const {
  emit_header(out);
  ByteWriter(out).bytes(payload);
}

}  // namespace sandboxd::net::wire
