// IPv4: the payload lies inside the input, and whatever parses re-emits to a
// header that parses to the same fields (options aside: emit writes none).
#include "daemon/net/wire/ipv4.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes packet(as_span(data, size).begin(), as_span(data, size).end());
  // Repair the header checksum unless the input asks not to (TOS low bit).
  if (size >= 20 && (data[1] & 1) == 0) {
    const std::size_t ihl = (data[0] & 0x0fu) * 4;
    if (ihl >= 20 && ihl <= size) {
      Bytes header(packet.begin(), packet.begin() + static_cast<std::ptrdiff_t>(ihl));
      repair_checksum(header, 10, false, {}, {}, IpProtocol::kIcmp);
      std::copy(header.begin(), header.end(), packet.begin());
    }
  }
  auto ip = Ipv4Repr::parse(packet);
  if (!ip) return 0;
  require(ip->payload.data() >= packet.data() &&
          ip->payload.data() + ip->payload.size() <= packet.data() + packet.size());
  require(ip->fragment_offset % 8 == 0);

  Bytes out;
  ip->emit(out);
  auto again = Ipv4Repr::parse(out);
  require(again.has_value());
  require(again->src == ip->src && again->dst == ip->dst && again->protocol == ip->protocol);
  require(again->ttl == ip->ttl && again->tos == ip->tos && again->identification == ip->identification);
  require(again->dont_fragment == ip->dont_fragment && again->more_fragments == ip->more_fragments);
  require(again->fragment_offset == ip->fragment_offset);
  require(again->options.empty());
  require(same_bytes(again->payload, ip->payload));
  return 0;
}
