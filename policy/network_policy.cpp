#include "policy/network_policy.hpp"

#include <cstddef>

namespace sandboxd::policy {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Compares without allocating: `host` comes from every DNS query and SNI.
bool equal_ignoring_case(std::string_view host, std::string_view lower_name) {
  if (host.size() != lower_name.size()) return false;
  for (std::size_t i = 0; i < host.size(); ++i)
    if (lower(host[i]) != lower_name[i]) return false;
  return true;
}

std::uint32_t mask_of(std::uint8_t prefix) {
  return prefix == 0 ? 0u : ~std::uint32_t{0} << (32 - (prefix > 32 ? 32 : prefix));
}

}  // namespace

bool HostPattern::matches(std::string_view host) const {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return false;  // an IP-literal flow: no name to match, even for "*"
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kExact:
      return equal_ignoring_case(host, name);
    case Kind::kSuffix:
      // At least one label before ".suffix": "*.example.com" is not example.com.
      return host.size() > name.size() + 1 && host[host.size() - name.size() - 1] == '.' &&
             equal_ignoring_case(host.substr(host.size() - name.size()), name);
  }
  return false;
}

std::string HostPattern::to_string() const {
  switch (kind) {
    case Kind::kAny:
      return "*";
    case Kind::kSuffix:
      return "*." + name;
    case Kind::kExact:
      break;
  }
  return name;
}

bool AddressRange::contains(wire::Ipv4Address a) const {
  const std::uint32_t mask = mask_of(prefix);
  return (a.to_u32() & mask) == (base.to_u32() & mask);
}

std::string AddressRange::to_string() const {
  if (prefix == 32) return base.to_string();
  return base.to_string() + "/" + std::to_string(prefix);
}

NetworkPolicy NetworkPolicy::allow_public() {
  NetworkPolicy p;
  Rule by_name;
  by_name.host = HostPattern{HostPattern::Kind::kAny, ""};
  by_name.verdict = Verdict::kAllow;
  // 0.0.0.0/0 spans every class, so it opens public addresses only
  // (evaluate.hpp): the IP-literal half of "allow-all".
  Rule by_address;
  by_address.address = AddressRange{wire::Ipv4Address::unspecified(), 0};
  by_address.verdict = Verdict::kAllow;
  p.rules.push_back(std::move(by_name));
  p.rules.push_back(std::move(by_address));
  return p;
}

}  // namespace sandboxd::policy
