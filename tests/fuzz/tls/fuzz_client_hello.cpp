// ClientHello: every answer keeps its invariants (a reported host name is a
// valid lower-case DNS name, needed > what was given, nothing past the bound),
// and the parser is consistent with itself as bytes arrive: a prefix cut at a
// point the input chooses either needs more or gives the whole input's answer,
// and a complete answer is the same from exactly the bytes it consumed.
#include <string_view>

#include "daemon/net/tls/client_hello.hpp"
#include "daemon/net/wire/dns.hpp"
#include "tests/fuzz/net/fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::tls;
using sandboxd::net::wire::fuzz::as_span;
using sandboxd::net::wire::fuzz::require;

namespace {

void check_invariants(const ClientHelloResult& r, std::size_t size) {
  require(r.reason != nullptr);
  switch (r.status) {
    case ClientHelloStatus::kNeedMore:
      require(r.needed > size && r.needed <= kMaxClientHelloBytes);
      break;
    case ClientHelloStatus::kNotTls:
    case ClientHelloStatus::kMalformed:
      require(!std::string_view(r.reason).empty());
      break;
    case ClientHelloStatus::kComplete: {
      const ClientHello& h = r.hello;
      require(h.record_bytes <= size && h.record_bytes <= kMaxClientHelloBytes);
      if (h.sni_status == SniStatus::kHostName) {
        require(sandboxd::net::wire::is_valid_dns_name(h.sni) && h.sni.back() != '.');
        for (char c : h.sni) require(!(c >= 'A' && c <= 'Z'));
      }
      if (h.sni_status == SniStatus::kInvalid) require(h.sni.empty() && !std::string_view(h.sni_error).empty());
      if (h.sni_status == SniStatus::kAbsent) require(h.sni.empty());
      for (const auto& p : h.alpn) require(!p.empty());
      if (h.supported_versions) require(!h.supported_versions->empty());
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in = as_span(data, size);
  const ClientHelloResult whole = parse_client_hello(in);
  check_invariants(whole, size);
  if (whole.status == ClientHelloStatus::kComplete) {
    require(parse_client_hello(in.first(whole.hello.record_bytes)) == whole);
  }
  if (size == 0) return 0;
  // The last bytes choose the cut: the first ones are the record header,
  // which interesting inputs share.
  const std::size_t choice = data[size - 1] | (std::size_t{size > 1 ? data[size - 2] : std::uint8_t{0}} << 8);
  const std::size_t cut = choice % (size + 1);
  const ClientHelloResult part = parse_client_hello(in.first(cut));
  check_invariants(part, cut);
  if (part.status == ClientHelloStatus::kNeedMore) {
    if (whole.status == ClientHelloStatus::kComplete) require(part.needed <= whole.hello.record_bytes);
  } else {
    require(part == whole);
  }
  return 0;
}
