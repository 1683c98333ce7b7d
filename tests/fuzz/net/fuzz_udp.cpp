// UDP over the addresses in the first eight input bytes: whatever parses
// re-emits to a datagram that parses the same.
#include "daemon/net/wire/udp.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  AddressedInput in = split_addresses(as_span(data, size));
  if (in.fix_checksum && in.rest.size() >= 8) {
    // Checksum over the datagram as its length field bounds it.
    const std::size_t length = (static_cast<std::size_t>(in.rest[4]) << 8) | static_cast<std::size_t>(in.rest[5]);
    if (length >= 8 && length <= in.rest.size()) {
      Bytes d(in.rest.begin(), in.rest.begin() + static_cast<std::ptrdiff_t>(length));
      repair_checksum(d, 6, true, in.src, in.dst, IpProtocol::kUdp);
      std::copy(d.begin(), d.end(), in.rest.begin());
    }
  }
  auto u = UdpRepr::parse(in.rest, in.src, in.dst);
  if (!u) return 0;
  Bytes out;
  u->emit(out, in.src, in.dst);
  auto again = UdpRepr::parse(out, in.src, in.dst);
  require(again.has_value());
  require(again->src_port == u->src_port && again->dst_port == u->dst_port);
  require(same_bytes(again->payload, u->payload));
  return 0;
}
