// ARP for IPv4 over Ethernet (RFC 826): requests and replies.
//
// Owns: the 28-byte packet and its fixed fields (hardware type 1, protocol
// type 0x0800, address lengths 6 and 4), which are checked rather than carried.
// Trailing bytes (Ethernet padding to 60 bytes) are ignored.
//
// Deliberately not done: RARP and InARP operations, other hardware or protocol
// types. Who answers what, gratuitous ARP and the neighbour cache belong to
// the stack.
#pragma once

#include <cstddef>
#include <cstdint>

#include "daemon/net/wire/address.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

enum class ArpOperation : std::uint16_t { kRequest = 1, kReply = 2 };

struct ArpRepr {
  static constexpr std::size_t kLength = 28;

  ArpOperation operation = ArpOperation::kRequest;
  MacAddress sender_mac;
  Ipv4Address sender_ip;
  MacAddress target_mac;  // zero in a request
  Ipv4Address target_ip;

  static Expected<ArpRepr> parse(ByteSpan packet);
  void emit(Bytes& out) const;

  friend bool operator==(const ArpRepr&, const ArpRepr&) = default;
};

}  // namespace sandboxd::net::wire
