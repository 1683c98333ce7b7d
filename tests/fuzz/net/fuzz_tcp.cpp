// TCP over the addresses in the first eight input bytes: whatever parses
// re-emits to a segment that parses the same (emit may drop SACK blocks its
// aligned option layout has no room for, never others).
#include "daemon/net/wire/tcp.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  AddressedInput in = split_addresses(as_span(data, size));
  if (in.fix_checksum) repair_checksum(in.rest, 16, true, in.src, in.dst, IpProtocol::kTcp);
  auto t = TcpRepr::parse(in.rest, in.src, in.dst);
  if (!t) return 0;
  require(t->options.sack_block_count <= TcpOptions::kMaxSackBlocks);
  require(!t->options.window_scale || *t->options.window_scale <= TcpOptions::kMaxWindowScale);

  Bytes out;
  t->emit(out, in.src, in.dst);
  require(out.size() == t->header_length() + t->payload.size());
  require(t->header_length() <= 60 && t->header_length() % 4 == 0);
  auto again = TcpRepr::parse(out, in.src, in.dst);
  require(again.has_value());
  require(again->src_port == t->src_port && again->dst_port == t->dst_port);
  require(again->seq_number == t->seq_number && again->ack_number == t->ack_number);
  require(again->flags == t->flags && again->window == t->window && again->urgent_pointer == t->urgent_pointer);
  const TcpOptions& a = again->options;
  const TcpOptions& b = t->options;
  require(a.mss == b.mss && a.window_scale == b.window_scale && a.sack_permitted == b.sack_permitted);
  require(a.timestamps == b.timestamps);
  require(a.sack_block_count <= b.sack_block_count);
  for (std::size_t i = 0; i < a.sack_block_count; ++i) require(a.sack_blocks[i] == b.sack_blocks[i]);
  require(same_bytes(again->payload, t->payload));
  return 0;
}
