// Ethernet: whatever parses re-emits to the same bytes.
#include "daemon/net/wire/ethernet.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in = as_span(data, size);
  auto frame = EthernetRepr::parse(in);
  if (!frame) return 0;
  require(frame->ethertype != EtherType::kVlan);
  Bytes out;
  frame->emit(out);
  require(same_bytes(out, in));
  return 0;
}
