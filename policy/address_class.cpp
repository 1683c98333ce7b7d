#include "policy/address_class.hpp"

#include <array>
#include <cstddef>

namespace sandboxd::policy {

namespace {

struct Block {
  std::uint32_t base;
  std::uint8_t prefix;
  AddressClass cls;
};

constexpr std::uint32_t ip(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// The two single addresses carved out of larger blocks come first, so the
// first block containing an address is its class.
constexpr std::array<Block, 16> kBlocks{{
    {ip(0, 0, 0, 0), 32, AddressClass::kUnspecified},
    {ip(255, 255, 255, 255), 32, AddressClass::kBroadcast},
    {ip(0, 0, 0, 0), 8, AddressClass::kReserved},
    {ip(10, 0, 0, 0), 8, AddressClass::kPrivate},
    {ip(100, 64, 0, 0), 10, AddressClass::kCgnat},
    {ip(127, 0, 0, 0), 8, AddressClass::kLoopback},
    {ip(169, 254, 0, 0), 16, AddressClass::kLinkLocal},
    {ip(172, 16, 0, 0), 12, AddressClass::kPrivate},
    {ip(192, 0, 0, 0), 24, AddressClass::kReserved},
    {ip(192, 0, 2, 0), 24, AddressClass::kReserved},
    {ip(192, 168, 0, 0), 16, AddressClass::kPrivate},
    {ip(198, 18, 0, 0), 15, AddressClass::kReserved},
    {ip(198, 51, 100, 0), 24, AddressClass::kReserved},
    {ip(203, 0, 113, 0), 24, AddressClass::kReserved},
    {ip(224, 0, 0, 0), 4, AddressClass::kMulticast},
    {ip(240, 0, 0, 0), 4, AddressClass::kReserved},
}};

constexpr AddressRange to_range(const Block& b) { return {wire::Ipv4Address::from_u32(b.base), b.prefix}; }

const Block* find_block(wire::Ipv4Address a) {
  for (const auto& b : kBlocks)
    if (to_range(b).contains(a)) return &b;
  return nullptr;
}

}  // namespace

AddressClass classify(wire::Ipv4Address a) {
  const Block* b = find_block(a);
  return b == nullptr ? AddressClass::kPublic : b->cls;
}

std::string_view to_string(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic: return "public";
    case AddressClass::kPrivate: return "private";
    case AddressClass::kLinkLocal: return "link-local";
    case AddressClass::kCgnat: return "cgnat";
    case AddressClass::kReserved: return "reserved";
    case AddressClass::kLoopback: return "loopback";
    case AddressClass::kMulticast: return "multicast";
    case AddressClass::kUnspecified: return "unspecified";
    case AddressClass::kBroadcast: return "broadcast";
  }
  return "?";
}

bool may_be_named(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
    case AddressClass::kPrivate:
    case AddressClass::kLinkLocal:
    case AddressClass::kCgnat:
    case AddressClass::kReserved:
      return true;
    case AddressClass::kLoopback:
    case AddressClass::kMulticast:
    case AddressClass::kUnspecified:
    case AddressClass::kBroadcast:
      break;
  }
  return false;
}

std::optional<AddressRange> class_block(wire::Ipv4Address a) {
  const Block* b = find_block(a);
  if (b == nullptr) return std::nullopt;
  return to_range(*b);
}

bool range_opens(const AddressRange& range, wire::Ipv4Address a) {
  if (!range.contains(a)) return false;
  const AddressClass c = classify(a);
  if (c == AddressClass::kPublic) return true;
  if (!may_be_named(c)) return false;
  const auto block = class_block(a);
  // CIDR ranges are nested or disjoint, so the range lies in the block
  // exactly when it is no wider and its base is inside.
  return block && range.prefix >= block->prefix && block->contains(range.base);
}

std::optional<wire::Ipv4Address> parse_ipv4_mapped(std::string_view text) {
  constexpr std::string_view kPrefix = "::ffff:";
  if (text.size() <= kPrefix.size()) return std::nullopt;
  for (std::size_t i = 0; i < kPrefix.size(); ++i) {
    const char c = text[i];
    const char l = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    if (l != kPrefix[i]) return std::nullopt;
  }
  auto v4 = wire::Ipv4Address::parse(text.substr(kPrefix.size()));
  if (!v4) return std::nullopt;
  return *v4;
}

}  // namespace sandboxd::policy
