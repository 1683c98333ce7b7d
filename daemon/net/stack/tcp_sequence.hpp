// Comparisons of TCP sequence numbers, which live on a circle of 2^32.
//
// Sequence numbers wrap: 0x00000005 comes after 0xfffffff0. Two numbers are
// compared by the sign of their difference taken as a signed 32-bit value
// (RFC 1982 serial arithmetic), which is right as long as they are less than
// 2^31 apart — always true for numbers within one connection's windows, which
// RFC 7323 caps at 2^30. The casts go through uint32_t subtraction, so there
// is no signed overflow anywhere.
#pragma once

#include <cstdint>

namespace sandboxd::net {

// a - b as a signed distance on the circle.
constexpr std::int32_t seq_diff(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b); }

constexpr bool seq_lt(std::uint32_t a, std::uint32_t b) { return seq_diff(a, b) < 0; }
constexpr bool seq_le(std::uint32_t a, std::uint32_t b) { return seq_diff(a, b) <= 0; }
constexpr bool seq_gt(std::uint32_t a, std::uint32_t b) { return seq_diff(a, b) > 0; }
constexpr bool seq_ge(std::uint32_t a, std::uint32_t b) { return seq_diff(a, b) >= 0; }

// Whether `seq` lies in [begin, begin + length): the test for "in the window".
// Computed as an unsigned offset, so it is exact even for a window of 2^31 or more.
constexpr bool seq_in_window(std::uint32_t seq, std::uint32_t begin, std::uint32_t length) {
  return seq - begin < length;
}

}  // namespace sandboxd::net
