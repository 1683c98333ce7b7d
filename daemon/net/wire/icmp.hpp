// ICMP for IPv4 (RFC 792).
//
// Owns: the 8-byte header (type, code, checksum, four type-specific bytes), its
// checksum, and the data behind it. Echo request and reply are decoded fully:
// the four bytes are the identifier and sequence number, the data is echoed.
// Every other type is decoded as type and code only; its four bytes are kept
// in `identifier`/`sequence` as their high and low halves (for "fragmentation
// needed" the next-hop MTU is `sequence`) and its data (usually the offending
// IP header plus 8 bytes) is the payload, uninterpreted.
//
// Deliberately not done: timestamp, address-mask and router messages, and any
// decision about which errors to send: that is the stack's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

enum class IcmpType : std::uint8_t {
  kEchoReply = 0,
  kDestinationUnreachable = 3,
  kRedirect = 5,
  kEchoRequest = 8,
  kTimeExceeded = 11,
  kParameterProblem = 12,
};

struct IcmpRepr {
  static constexpr std::size_t kHeaderLength = 8;

  IcmpType type = IcmpType::kEchoRequest;
  std::uint8_t code = 0;
  std::uint16_t identifier = 0;  // echo; other types: high half of the type-specific word
  std::uint16_t sequence = 0;    // echo; other types: low half of the type-specific word
  ByteSpan payload;              // parse: a view into the message; emit: copied behind the header

  bool is_echo() const { return type == IcmpType::kEchoRequest || type == IcmpType::kEchoReply; }

  static Expected<IcmpRepr> parse(ByteSpan message);
  void emit(Bytes& out) const;
};

}  // namespace sandboxd::net::wire
