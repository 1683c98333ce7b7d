// DNS: whatever parses holds only valid names, and re-emits (uncompressed,
// unless that outgrows 65535 bytes) to a message that parses to an equal one.
#include <string>

#include "daemon/net/wire/dns.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::wire;
using namespace sandboxd::net::wire::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto m = DnsRepr::parse(as_span(data, size));
  if (!m) return 0;
  for (const auto& q : m->questions) require(is_valid_dns_name(q.name) && q.name.size() <= DnsRepr::kMaxNameLength);
  for (const auto* section : {&m->answers, &m->authorities, &m->additionals}) {
    for (const auto& r : *section) {
      require(is_valid_dns_name(r.name));
      if (const auto* target = std::get_if<std::string>(&r.data)) require(is_valid_dns_name(*target));
    }
  }
  Bytes out;
  auto emitted = m->emit(out);
  if (!emitted) {
    require(std::string(emitted.error().reason) == "dns: message is longer than 65535 bytes");
    require(out.empty());
    return 0;
  }
  auto again = DnsRepr::parse(out);
  require(again.has_value());
  require(*again == *m);
  return 0;
}
