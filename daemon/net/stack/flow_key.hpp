// The four-tuple that names a guest's TCP connection or UDP flow, and the id
// the stack gives each flow so the egress side can refer to it without
// holding pointers into the stack. Ids are never reused within a stack.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

#include "daemon/net/wire/address.hpp"

namespace sandboxd::net {

using FlowId = std::uint64_t;

struct FlowKey {
  wire::Ipv4Address guest_ip;
  std::uint16_t guest_port = 0;
  wire::Ipv4Address remote_ip;
  std::uint16_t remote_port = 0;

  // "10.0.2.15:40000 -> 93.184.216.34:443"
  std::string to_string() const {
    return guest_ip.to_string() + ":" + std::to_string(guest_port) + " -> " + remote_ip.to_string() + ":" +
           std::to_string(remote_port);
  }

  friend auto operator<=>(const FlowKey&, const FlowKey&) = default;
};

}  // namespace sandboxd::net

template <>
struct std::hash<sandboxd::net::FlowKey> {
  std::size_t operator()(const sandboxd::net::FlowKey& k) const noexcept {
    std::uint64_t a = (std::uint64_t{k.guest_ip.to_u32()} << 16) | k.guest_port;
    std::uint64_t b = (std::uint64_t{k.remote_ip.to_u32()} << 16) | k.remote_port;
    return std::hash<std::uint64_t>{}(a * 0x9e3779b97f4a7c15ull ^ b);
  }
};
