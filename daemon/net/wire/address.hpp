// Link- and network-layer addresses as small value types.
//
// Each address is its octets in wire order, so codecs copy them straight from
// and to packets; the text forms are for logs, configuration and tests.
// Ipv6Address exists only so DNS can carry AAAA answers: the stack itself
// speaks IPv4 alone.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

struct MacAddress {
  std::array<std::uint8_t, 6> octets{};

  static constexpr MacAddress broadcast() { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }

  bool is_broadcast() const { return *this == broadcast(); }
  // Group bit set: broadcast is a multicast address too.
  bool is_multicast() const { return (octets[0] & 0x01) != 0; }
  bool is_zero() const { return *this == MacAddress{}; }

  // "52:54:00:12:34:56"; parse accepts exactly that form, either case.
  std::string to_string() const;
  static Expected<MacAddress> parse(std::string_view text);

  // Reads six octets (a short read leaves the reader failed and returns zeros).
  static MacAddress read(ByteReader& r);
  void write(ByteWriter& w) const;

  friend auto operator<=>(const MacAddress&, const MacAddress&) = default;
};

struct Ipv4Address {
  std::array<std::uint8_t, 4> octets{};

  static constexpr Ipv4Address from_u32(std::uint32_t v) {
    return {{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
             static_cast<std::uint8_t>(v)}};
  }
  constexpr std::uint32_t to_u32() const {
    return (std::uint32_t{octets[0]} << 24) | (std::uint32_t{octets[1]} << 16) | (std::uint32_t{octets[2]} << 8) |
           std::uint32_t{octets[3]};
  }
  static constexpr Ipv4Address unspecified() { return {}; }
  static constexpr Ipv4Address broadcast() { return {{255, 255, 255, 255}}; }

  bool is_unspecified() const { return to_u32() == 0; }
  bool is_broadcast() const { return to_u32() == 0xffffffffu; }
  bool is_multicast() const { return (octets[0] & 0xf0) == 0xe0; }
  bool is_loopback() const { return octets[0] == 127; }

  // Dotted quad. parse takes exactly four decimal octets without leading
  // zeros ("010" could be read as octal elsewhere, so it is refused here).
  std::string to_string() const;
  static Expected<Ipv4Address> parse(std::string_view text);

  static Ipv4Address read(ByteReader& r);
  void write(ByteWriter& w) const;

  friend auto operator<=>(const Ipv4Address&, const Ipv4Address&) = default;
};

struct Ipv6Address {
  std::array<std::uint8_t, 16> octets{};

  // RFC 5952 text: lower case, the longest run of zero groups shortened to "::".
  std::string to_string() const;

  static Ipv6Address read(ByteReader& r);
  void write(ByteWriter& w) const;

  friend auto operator<=>(const Ipv6Address&, const Ipv6Address&) = default;
};

}  // namespace sandboxd::net::wire

template <>
struct std::hash<sandboxd::net::wire::MacAddress> {
  std::size_t operator()(const sandboxd::net::wire::MacAddress& m) const noexcept {
    std::uint64_t v = 0;
    for (auto o : m.octets) v = (v << 8) | o;
    return std::hash<std::uint64_t>{}(v);
  }
};

template <>
struct std::hash<sandboxd::net::wire::Ipv4Address> {
  std::size_t operator()(const sandboxd::net::wire::Ipv4Address& a) const noexcept {
    return std::hash<std::uint32_t>{}(a.to_u32());
  }
};
