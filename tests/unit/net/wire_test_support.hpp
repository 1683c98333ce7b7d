// Helpers for the wire codec tests: packets written as hex, byte comparison.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "protocol/bytes.hpp"

namespace sandboxd::net::wire::test {

// Hex digits to bytes; spaces, newlines and colons are ignored.
inline Bytes hex(std::string_view text) {
  Bytes out;
  int high = -1;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else if (c == ' ' || c == '\n' || c == ':')
      continue;
    else
      throw std::invalid_argument("hex: bad character");
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::byte>(high * 16 + v));
      high = -1;
    }
  }
  if (high >= 0) throw std::invalid_argument("hex: odd number of digits");
  return out;
}

inline std::string to_hex(ByteSpan b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::byte x : b) {
    out += kDigits[static_cast<std::uint8_t>(x) >> 4];
    out += kDigits[static_cast<std::uint8_t>(x) & 0x0f];
  }
  return out;
}

inline bool same_bytes(ByteSpan a, ByteSpan b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

inline void set_u8(Bytes& b, std::size_t at, std::uint8_t v) { b.at(at) = static_cast<std::byte>(v); }
inline void set_u16(Bytes& b, std::size_t at, std::uint16_t v) {
  b.at(at) = static_cast<std::byte>(v >> 8);
  b.at(at + 1) = static_cast<std::byte>(v);
}
inline std::uint16_t get_u16(ByteSpan b, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned>(b[at]) << 8) | static_cast<unsigned>(b[at + 1]));
}

}  // namespace sandboxd::net::wire::test
