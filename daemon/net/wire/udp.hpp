// UDP over IPv4 (RFC 768).
//
// Owns: the 8-byte header, the length field against the IP payload, and the
// checksum over the IPv4 pseudo-header. A zero checksum means the sender
// computed none, which IPv4 allows; it is accepted unverified. Emit always
// computes one (a computed zero is sent as 0xffff). The payload is `length - 8`
// bytes; bytes of the IP payload beyond the UDP length are ignored.
//
// Deliberately not done: UDP-Lite, and anything about ports (binding, demux):
// that is the stack's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "daemon/net/wire/address.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

struct UdpRepr {
  static constexpr std::size_t kHeaderLength = 8;
  static constexpr std::size_t kMaxPayloadLength = 0xffff - kHeaderLength;

  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  ByteSpan payload;  // parse: a view into the datagram; emit: copied behind the header

  // `datagram` is the IPv4 payload; the addresses are for the pseudo-header.
  static Expected<UdpRepr> parse(ByteSpan datagram, Ipv4Address src, Ipv4Address dst);
  void emit(Bytes& out, Ipv4Address src, Ipv4Address dst) const;
};

}  // namespace sandboxd::net::wire
