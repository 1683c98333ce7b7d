// Which part of the IPv4 space an address is in, for the rule that keeps
// flows on the public internet unless a rule names the address.
//
//   kPublic       everything not listed below
//   kPrivate      10/8, 172.16/12, 192.168/16
//   kLinkLocal    169.254/16, cloud metadata (169.254.169.254) included
//   kCgnat        100.64/10
//   kReserved     0/8 apart from 0.0.0.0, 192.0.0/24, 192.0.2/24, 198.18/15,
//                 198.51.100/24, 203.0.113/24, 240/4 apart from broadcast
//   kLoopback     127/8
//   kMulticast    224/4
//   kUnspecified  0.0.0.0
//   kBroadcast    255.255.255.255
//
// Loopback, multicast, unspecified and broadcast are never reachable, named
// or not: the host's loopback is reached only through a host alias the
// daemon's operator configured, never through a sandbox's policy.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "daemon/net/wire/address.hpp"
#include "policy/network_policy.hpp"

namespace sandboxd::policy {

namespace wire = net::wire;

enum class AddressClass : std::uint8_t {
  kPublic, kPrivate, kLinkLocal, kCgnat, kReserved, kLoopback, kMulticast, kUnspecified, kBroadcast
};

AddressClass classify(wire::Ipv4Address a);
std::string_view to_string(AddressClass c);  // "public", "private", "link-local", "cgnat", ...

// Whether a rule may open the class at all (private, link-local, CGNAT and
// reserved may be, by an address rule inside them; public always is).
bool may_be_named(AddressClass c);

// The block of the table above that puts `a` in its class (10.0.0.0/8 for
// 10.1.2.3, 169.254.0.0/16 for the metadata address, 0.0.0.0/8 for 0.1.2.3);
// nullopt for a public address.
std::optional<AddressRange> class_block(wire::Ipv4Address a);

// Whether an address rule for `range` (which contains `a`) may open `a`: a
// public address always; one in a class that may be named only if the whole
// range lies inside `a`'s class block, so 10.1.0.0/16 opens 10.1.2.3 and
// 0.0.0.0/0 opens no private address; loopback, multicast, unspecified and
// broadcast never.
bool range_opens(const AddressRange& range, wire::Ipv4Address a);

// The IPv4 address inside "::ffff:a.b.c.d" (an IPv4-mapped IPv6 address) as
// text, so an address written that way is judged as the IPv4 address it is;
// nullopt for any other text.
std::optional<wire::Ipv4Address> parse_ipv4_mapped(std::string_view text);

}  // namespace sandboxd::policy
