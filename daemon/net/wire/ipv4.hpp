// IPv4 headers (RFC 791).
//
// Owns: the header, its checksum (verified on parse, computed on emit), and
// the bounds between header, payload and trailing bytes. The payload is
// exactly `total length - header length` bytes; anything after that in the
// buffer (Ethernet padding of small packets) is ignored.
//
// Options are skipped by the header length (IHL) and exposed as raw bytes;
// emit writes none. Fragments are parsed, not reassembled: the parser reports
// the more-fragments flag and the offset, and the stack drops fragments and
// counts them. Reassembly would hold guest-chosen state in memory, and a link
// with a 65520-byte MTU gives the guest no reason to fragment; on the far side
// the daemon talks through host sockets, whose kernel reassembles.
//
// Deliberately not done: reassembly, option interpretation (source routing,
// record route), IPv6.
#pragma once

#include <cstddef>
#include <cstdint>

#include "daemon/net/wire/address.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

enum class IpProtocol : std::uint8_t { kIcmp = 1, kTcp = 6, kUdp = 17 };

struct Ipv4Repr {
  static constexpr std::size_t kMinHeaderLength = 20;
  static constexpr std::size_t kMaxTotalLength = 0xffff;

  Ipv4Address src;
  Ipv4Address dst;
  IpProtocol protocol = IpProtocol::kTcp;
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;  // DSCP and ECN bits, carried as one byte
  std::uint16_t identification = 0;
  bool dont_fragment = false;
  bool more_fragments = false;
  std::uint16_t fragment_offset = 0;  // in bytes (the wire field times 8)
  ByteSpan options;                   // parse only: the raw option bytes; emit writes no options
  ByteSpan payload;                   // parse: a view into the packet; emit: copied behind the header

  // True for any piece of a fragmented datagram, the first one included.
  bool is_fragment() const { return more_fragments || fragment_offset != 0; }

  static Expected<Ipv4Repr> parse(ByteSpan packet);

  // Appends a 20-byte header announcing `payload_length` bytes of payload,
  // for callers that write the payload in place behind it.
  void emit_header(Bytes& out, std::size_t payload_length) const;
  // Appends the header and `payload`.
  void emit(Bytes& out) const;
};

}  // namespace sandboxd::net::wire
