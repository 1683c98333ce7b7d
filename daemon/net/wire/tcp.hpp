// TCP segments over IPv4 (RFC 9293), with the options a modern peer sends.
//
// Owns: the header, the flags, the checksum over the IPv4 pseudo-header
// (verified on parse, computed on emit), the options and the payload span.
// Options understood: end of list, no-op, MSS, window scale, SACK-permitted,
// SACK blocks and timestamps. Unknown options are skipped by their length.
// An option whose length is below 2, runs past the header, or does not match
// its kind's fixed size is malformed, and so is the whole segment.
//
// A window scale above 14 is read as 14 (RFC 7323 section 2.3), so the stack
// can shift by it without checking. A repeated option: the last one wins.
//
// Emit writes the options it has in a fixed, 4-byte aligned layout (MSS,
// SACK-permitted with timestamps, window scale, SACK blocks) and drops SACK
// blocks that would not fit in the 40 bytes of option space.
//
// Deliberately not done: sequence arithmetic, connection state, MD5/AO
// signatures, TCP Fast Open, the ECN nonce bit. Those are the stack's, or
// not wanted.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "daemon/net/wire/address.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

struct TcpFlags {
  bool fin = false;
  bool syn = false;
  bool rst = false;
  bool psh = false;
  bool ack = false;
  bool urg = false;
  bool ece = false;
  bool cwr = false;

  friend bool operator==(const TcpFlags&, const TcpFlags&) = default;
};

struct TcpSackBlock {
  std::uint32_t left = 0;   // first sequence number of the block
  std::uint32_t right = 0;  // sequence number just past it

  friend bool operator==(const TcpSackBlock&, const TcpSackBlock&) = default;
};

struct TcpTimestamps {
  std::uint32_t value = 0;
  std::uint32_t echo_reply = 0;

  friend bool operator==(const TcpTimestamps&, const TcpTimestamps&) = default;
};

struct TcpOptions {
  static constexpr std::size_t kMaxSackBlocks = 4;  // 2 + 4 * 8 bytes fill the option space
  static constexpr std::uint8_t kMaxWindowScale = 14;

  std::optional<std::uint16_t> mss;
  std::optional<std::uint8_t> window_scale;
  bool sack_permitted = false;
  std::optional<TcpTimestamps> timestamps;
  std::array<TcpSackBlock, kMaxSackBlocks> sack_blocks{};
  std::size_t sack_block_count = 0;

  friend bool operator==(const TcpOptions&, const TcpOptions&) = default;
};

struct TcpRepr {
  static constexpr std::size_t kMinHeaderLength = 20;
  static constexpr std::size_t kMaxOptionsLength = 40;

  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq_number = 0;
  std::uint32_t ack_number = 0;  // meaningful only with flags.ack
  TcpFlags flags;
  std::uint16_t window = 0;  // as on the wire, unscaled
  std::uint16_t urgent_pointer = 0;
  TcpOptions options;
  ByteSpan payload;  // parse: a view into the segment; emit: copied behind the header

  // Sequence space the segment occupies: its payload plus one each for SYN and FIN.
  std::uint32_t sequence_length() const {
    return static_cast<std::uint32_t>(payload.size()) + (flags.syn ? 1u : 0u) + (flags.fin ? 1u : 0u);
  }

  // `segment` is the IPv4 payload; the addresses are for the pseudo-header.
  static Expected<TcpRepr> parse(ByteSpan segment, Ipv4Address src, Ipv4Address dst);

  // Length of the header emit writes, options included.
  std::size_t header_length() const;
  void emit(Bytes& out, Ipv4Address src, Ipv4Address dst) const;
};

}  // namespace sandboxd::net::wire
