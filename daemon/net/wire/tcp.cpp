#include "daemon/net/wire/tcp.hpp"

#include <algorithm>
#include <cassert>

#include "daemon/net/wire/checksum.hpp"

namespace sandboxd::net::wire {

namespace {

enum OptionKind : std::uint8_t {
  kEndOfList = 0,
  kNoOp = 1,
  kMss = 2,
  kWindowScale = 3,
  kSackPermitted = 4,
  kSack = 5,
  kTimestamps = 8,
};

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10, kUrg = 0x20, kEce = 0x40,
                       kCwr = 0x80;

Expected<void> parse_options(ByteSpan bytes, TcpOptions& out) {
  ByteReader r(bytes);
  while (!r.at_end()) {
    const std::uint8_t kind = r.u8();
    if (kind == kEndOfList) break;  // the rest is padding
    if (kind == kNoOp) continue;
    if (r.at_end()) return parse_error("tcp: option has no length byte");
    const std::uint8_t length = r.u8();
    if (length < 2) return parse_error("tcp: option length is below 2");
    if (length - 2u > r.remaining()) return parse_error("tcp: option runs past the header");
    ByteReader body(r.take(length - 2u));
    switch (kind) {
      case kMss:
        if (length != 4) return parse_error("tcp: MSS option length is not 4");
        out.mss = body.u16();
        break;
      case kWindowScale:
        if (length != 3) return parse_error("tcp: window scale option length is not 3");
        out.window_scale = std::min(body.u8(), TcpOptions::kMaxWindowScale);
        break;
      case kSackPermitted:
        if (length != 2) return parse_error("tcp: SACK-permitted option length is not 2");
        out.sack_permitted = true;
        break;
      case kSack: {
        if (length < 10 || (length - 2) % 8 != 0) return parse_error("tcp: SACK option length is not 2 + 8n");
        // At most four blocks fit: the option space is 40 bytes.
        out.sack_blocks = {};
        out.sack_block_count = (length - 2u) / 8;
        for (std::size_t i = 0; i < out.sack_block_count; ++i) {
          out.sack_blocks[i].left = body.u32();
          out.sack_blocks[i].right = body.u32();
        }
        break;
      }
      case kTimestamps:
        if (length != 10) return parse_error("tcp: timestamps option length is not 10");
        out.timestamps = TcpTimestamps{body.u32(), body.u32()};
        break;
      default:
        break;  // unknown: skipped by its length
    }
  }
  return {};
}

// Bytes of option space taken by everything but the SACK blocks.
std::size_t fixed_options_length(const TcpOptions& o) {
  std::size_t n = 0;
  if (o.mss) n += 4;
  if (o.timestamps) {
    n += 12;  // (NOP NOP or SACK-permitted) + timestamps
  } else if (o.sack_permitted) {
    n += 4;  // NOP NOP SACK-permitted
  }
  if (o.window_scale) n += 4;  // NOP + window scale
  return n;
}

std::size_t sack_blocks_that_fit(const TcpOptions& o) {
  const std::size_t left = TcpRepr::kMaxOptionsLength - fixed_options_length(o);
  if (left < 12) return 0;
  return std::min(o.sack_block_count, (left - 4) / 8);  // NOP NOP kind length + 8n
}

}  // namespace

Expected<TcpRepr> TcpRepr::parse(ByteSpan segment, Ipv4Address src, Ipv4Address dst) {
  if (segment.size() < kMinHeaderLength) return parse_error("tcp: segment is shorter than its header");
  if (segment.size() > 0xffff) return parse_error("tcp: segment is longer than IPv4 can carry");
  ByteReader r(segment);
  TcpRepr t;
  t.src_port = r.u16();
  t.dst_port = r.u16();
  t.seq_number = r.u32();
  t.ack_number = r.u32();
  const std::uint8_t offset_byte = r.u8();
  const std::size_t header_length = std::size_t{offset_byte} / 16 * 4;
  if (header_length < kMinHeaderLength) return parse_error("tcp: data offset is below 5");
  if (header_length > segment.size()) return parse_error("tcp: header is longer than the segment");
  if (ipv4_transport_checksum(src, dst, IpProtocol::kTcp, segment) != 0) return parse_error("tcp: checksum is wrong");

  const std::uint8_t f = r.u8();
  t.flags = TcpFlags{
      .fin = (f & kFin) != 0,
      .syn = (f & kSyn) != 0,
      .rst = (f & kRst) != 0,
      .psh = (f & kPsh) != 0,
      .ack = (f & kAck) != 0,
      .urg = (f & kUrg) != 0,
      .ece = (f & kEce) != 0,
      .cwr = (f & kCwr) != 0,
  };
  t.window = r.u16();
  r.skip(2);  // checksum, verified above
  t.urgent_pointer = r.u16();
  if (auto ok = parse_options(segment.subspan(kMinHeaderLength, header_length - kMinHeaderLength), t.options); !ok) {
    return Unexpected{ok.error()};
  }
  t.payload = segment.subspan(header_length);
  return t;
}

std::size_t TcpRepr::header_length() const {
  const std::size_t sack = sack_blocks_that_fit(options);
  return kMinHeaderLength + fixed_options_length(options) + (sack > 0 ? 4 + 8 * sack : 0);
}

void TcpRepr::emit(Bytes& out, Ipv4Address src, Ipv4Address dst) const {
  const std::size_t header = header_length();
  assert(header + payload.size() <= 0xffff);
  const std::size_t start = out.size();
  ByteWriter w(out);
  w.u16(src_port);
  w.u16(dst_port);
  w.u32(seq_number);
  w.u32(ack_number);
  w.u8(static_cast<std::uint8_t>((header / 4) << 4));
  std::uint8_t f = 0;
  if (flags.fin) f |= kFin;
  if (flags.syn) f |= kSyn;
  if (flags.rst) f |= kRst;
  if (flags.psh) f |= kPsh;
  if (flags.ack) f |= kAck;
  if (flags.urg) f |= kUrg;
  if (flags.ece) f |= kEce;
  if (flags.cwr) f |= kCwr;
  w.u8(f);
  w.u16(window);
  w.u16(0);
  w.u16(urgent_pointer);

  const TcpOptions& o = options;
  if (o.mss) {
    w.u8(kMss);
    w.u8(4);
    w.u16(*o.mss);
  }
  if (o.timestamps) {
    if (o.sack_permitted) {
      w.u8(kSackPermitted);
      w.u8(2);
    } else {
      w.u8(kNoOp);
      w.u8(kNoOp);
    }
    w.u8(kTimestamps);
    w.u8(10);
    w.u32(o.timestamps->value);
    w.u32(o.timestamps->echo_reply);
  } else if (o.sack_permitted) {
    w.u8(kNoOp);
    w.u8(kNoOp);
    w.u8(kSackPermitted);
    w.u8(2);
  }
  if (o.window_scale) {
    w.u8(kNoOp);
    w.u8(kWindowScale);
    w.u8(3);
    w.u8(*o.window_scale);
  }
  if (const std::size_t sack = sack_blocks_that_fit(o); sack > 0) {
    w.u8(kNoOp);
    w.u8(kNoOp);
    w.u8(kSack);
    w.u8(static_cast<std::uint8_t>(2 + 8 * sack));
    for (std::size_t i = 0; i < sack; ++i) {
      w.u32(o.sack_blocks[i].left);
      w.u32(o.sack_blocks[i].right);
    }
  }
  assert(out.size() - start == header);

  w.bytes(payload);
  w.patch_u16(start + 16, ipv4_transport_checksum(src, dst, IpProtocol::kTcp, ByteSpan(out).subspan(start)));
}

}  // namespace sandboxd::net::wire
