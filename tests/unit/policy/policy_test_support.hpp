// Shared by the policy tests: addresses and policies from text, so each
// table row reads like the document a user would write.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "daemon/net/wire/address.hpp"
#include "policy/network_policy.hpp"
#include "policy/policy_json.hpp"
#include "protocol/bytes.hpp"

namespace sandboxd::policy::test {

inline wire::Ipv4Address ip(std::string_view text) {
  auto a = wire::Ipv4Address::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

inline AddressRange range(std::string_view text) {
  AddressRange r;
  const auto slash = text.find('/');
  r.base = ip(text.substr(0, slash));
  if (slash != std::string_view::npos) r.prefix = static_cast<std::uint8_t>(std::stoi(std::string(text.substr(slash + 1))));
  return r;
}

// A policy from its JSON text; the test fails if the text is refused.
inline NetworkPolicy policy_of(std::string_view json) {
  auto p = parse_policy(as_bytes(json));
  if (!p) FAIL_CHECK(p.error().to_string());
  REQUIRE(p.has_value());
  return *p;
}

}  // namespace sandboxd::policy::test
