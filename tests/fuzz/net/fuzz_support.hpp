// Shared by the wire codec fuzz targets: input as a span, a hard check that
// aborts (so libFuzzer records the input), and checksum repair, so mutated
// packets get past checksum verification and reach the parsing behind it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "daemon/net/wire/address.hpp"
#include "daemon/net/wire/checksum.hpp"
#include "protocol/bytes.hpp"

namespace sandboxd::net::wire::fuzz {

inline ByteSpan as_span(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

inline void require(bool ok) {
  if (!ok) std::abort();
}

inline bool same_bytes(ByteSpan a, ByteSpan b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

// Takes the first eight bytes as source and destination addresses.
struct AddressedInput {
  Ipv4Address src;
  Ipv4Address dst;
  bool fix_checksum = false;
  Bytes rest;
};

inline AddressedInput split_addresses(ByteSpan in) {
  AddressedInput out;
  ByteReader r(in);
  out.src = Ipv4Address::read(r);
  out.dst = Ipv4Address::read(r);
  // Most inputs get a correct checksum; one in two by the source's low bit keeps its own.
  out.fix_checksum = (out.src.octets[3] & 1) == 0;
  ByteSpan rest = r.ok() ? r.rest() : ByteSpan{};
  out.rest.assign(rest.begin(), rest.end());
  return out;
}

// Writes the checksum that makes `bytes` (pseudo-header included when
// `pseudo`) verify, into the 16-bit field at `at`.
inline void repair_checksum(Bytes& bytes, std::size_t at, bool pseudo, Ipv4Address src, Ipv4Address dst,
                            IpProtocol protocol) {
  if (bytes.size() < at + 2 || bytes.size() > 0xffff) return;
  bytes[at] = std::byte{0};
  bytes[at + 1] = std::byte{0};
  const std::uint16_t sum = pseudo ? ipv4_transport_checksum(src, dst, protocol, bytes) : internet_checksum(bytes);
  bytes[at] = static_cast<std::byte>(sum >> 8);
  bytes[at + 1] = static_cast<std::byte>(sum);
}

}  // namespace sandboxd::net::wire::fuzz
