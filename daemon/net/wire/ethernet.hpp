// Ethernet II framing, as virtio-net hands frames to the daemon.
//
// Owns: the 14-byte header (destination, source, EtherType) and the span of
// payload behind it. Frames arrive without preamble or FCS.
//
// Deliberately not done: 802.1Q / 802.1ad VLAN tags (the guest's eth0 is never
// tagged, so a tagged frame is refused with a reason), 802.3 length/LLC frames
// (also refused), and padding to the 60-byte minimum on emit: virtio-net does
// not need it, and the receiving layers ignore padding anyway.
#pragma once

#include <cstddef>
#include <cstdint>

#include "daemon/net/wire/address.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

// Values seen in the field; others are carried through as numbers.
enum class EtherType : std::uint16_t {
  kIpv4 = 0x0800,
  kArp = 0x0806,
  kVlan = 0x8100,
  kIpv6 = 0x86dd,
  kQinQ = 0x88a8,
};

struct EthernetRepr {
  static constexpr std::size_t kHeaderLength = 14;

  MacAddress dst;
  MacAddress src;
  EtherType ethertype = EtherType::kIpv4;
  ByteSpan payload;  // parse: a view into the frame; emit: copied behind the header

  static Expected<EthernetRepr> parse(ByteSpan frame);

  // Appends the header only, for callers that write the payload in place.
  void emit_header(Bytes& out) const;
  // Appends the header and the payload.
  void emit(Bytes& out) const;
};

}  // namespace sandboxd::net::wire
