// ICMP: whatever parses re-emits to a message that parses the same.
#include "daemon/net/wire/icmp.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes message(as_span(data, size).begin(), as_span(data, size).end());
  if (size >= 8 && (data[1] & 0x80) == 0) repair_checksum(message, 2, false, {}, {}, IpProtocol::kIcmp);
  auto m = IcmpRepr::parse(message);
  if (!m) return 0;
  Bytes out;
  m->emit(out);
  require(out.size() == message.size());
  auto again = IcmpRepr::parse(out);
  require(again.has_value());
  require(again->type == m->type && again->code == m->code);
  require(again->identifier == m->identifier && again->sequence == m->sequence);
  require(same_bytes(again->payload, m->payload));
  return 0;
}
