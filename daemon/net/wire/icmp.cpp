#include "daemon/net/wire/icmp.hpp"

#include "daemon/net/wire/checksum.hpp"

namespace sandboxd::net::wire {

Expected<IcmpRepr> IcmpRepr::parse(ByteSpan message) {
  if (message.size() < kHeaderLength) return parse_error("icmp: message is shorter than its header");
  if (internet_checksum(message) != 0) return parse_error("icmp: checksum is wrong");
  ByteReader r(message);
  IcmpRepr m;
  m.type = static_cast<IcmpType>(r.u8());
  m.code = r.u8();
  r.skip(2);
  m.identifier = r.u16();
  m.sequence = r.u16();
  m.payload = r.rest();
  return m;
}

void IcmpRepr::emit(Bytes& out) const {
  const std::size_t start = out.size();
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>(type));
  w.u8(code);
  w.u16(0);
  w.u16(identifier);
  w.u16(sequence);
  w.bytes(payload);
  w.patch_u16(start + 2, internet_checksum(ByteSpan(out).subspan(start)));
}

}  // namespace sandboxd::net::wire
