// ARP: whatever parses re-emits to its first 28 bytes.
#include "daemon/net/wire/arp.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in = as_span(data, size);
  auto arp = ArpRepr::parse(in);
  if (!arp) return 0;
  Bytes out;
  arp->emit(out);
  require(same_bytes(out, in.first(ArpRepr::kLength)));
  auto again = ArpRepr::parse(out);
  require(again && *again == *arp);
  return 0;
}
