// DHCP: whatever parses re-emits to a message that parses to an equal one.
#include "daemon/net/wire/dhcp.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto d = DhcpRepr::parse(as_span(data, size));
  if (!d) return 0;
  Bytes out;
  d->emit(out);
  require(out.size() >= DhcpRepr::kMinEmitLength);
  auto again = DhcpRepr::parse(out);
  require(again.has_value());
  require(*again == *d);
  return 0;
}
