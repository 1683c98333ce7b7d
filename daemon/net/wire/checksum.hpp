// The RFC 1071 internet checksum, and the IPv4 pseudo-header that TCP and UDP
// add to it.
//
// The QEMU stream backend has no checksum offload: every checksum the guest
// receives is computed here, and every one it sends is verified here. Verifying
// is summing the data with its checksum field in place: a correct packet sums
// to 0xffff, so `finish()` returns 0.
//
// Deliberately absent: incremental update (RFC 1624). Packets are rebuilt, not
// rewritten, so nothing needs it.
#pragma once

#include <cstdint>

#include "daemon/net/wire/address.hpp"
#include "daemon/net/wire/ipv4.hpp"
#include "protocol/bytes.hpp"

namespace sandboxd::net::wire {

// A running one's complement sum. Data may arrive in pieces of any length,
// odd ones included: each byte keeps its position in the 16-bit words.
class InternetChecksum {
 public:
  void add(ByteSpan data);
  void add_u16(std::uint16_t v);
  void add_u32(std::uint32_t v);
  // Source, destination, zero, protocol, length (RFC 793 section 3.1, RFC 768).
  void add_ipv4_pseudo_header(Ipv4Address src, Ipv4Address dst, IpProtocol protocol, std::uint16_t length);

  // The value to store in a checksum field: the complement of the folded sum.
  std::uint16_t finish() const;

 private:
  std::uint64_t sum_ = 0;
  bool odd_ = false;  // an odd count of bytes so far: the next byte is a low byte
};

// Checksum of `data` alone (IPv4 header, ICMP).
std::uint16_t internet_checksum(ByteSpan data);

// Checksum of a TCP or UDP segment behind its IPv4 pseudo-header. The segment
// length must fit 16 bits (any segment carried by IPv4 does).
std::uint16_t ipv4_transport_checksum(Ipv4Address src, Ipv4Address dst, IpProtocol protocol, ByteSpan segment);

}  // namespace sandboxd::net::wire
