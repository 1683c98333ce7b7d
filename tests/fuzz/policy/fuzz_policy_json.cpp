// The policy's JSON form: whatever parses writes back (policy_to_json) to a
// value that reads to an equal policy, and the evaluator can use it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "policy/evaluate.hpp"
#include "policy/policy_json.hpp"

using namespace sandboxd;
using namespace sandboxd::policy;

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan bytes(reinterpret_cast<const std::byte*>(data), size);
  auto parsed = parse_policy(bytes);
  if (!parsed) {
    require(!parsed.error().message.empty());
    return 0;
  }
  require(parsed->rules.size() <= NetworkPolicy::kMaxRules);
  auto again = policy_from_json(policy_to_json(*parsed));
  require(again.has_value());
  require(*again == *parsed);
  // Every decision names why it was made.
  FlowFacts flow;
  flow.host = "a.example.com";
  flow.address = wire::Ipv4Address{{10, 1, 2, 3}};
  flow.port = 443;
  flow.scheme = Scheme::kHttps;
  require(!evaluate(*parsed, flow).reason.empty());
  flow.request = HttpRequestFacts{"GET", "/v1/x"};
  require(!evaluate(*parsed, flow).reason.empty());
  (void)name_may_be_allowed(*parsed, flow.host);
  (void)answer_address_allowed(*parsed, flow.host, flow.address);
  return 0;
}
