// The shape of one sandbox's network as its stack presents it to the guest.
//
// The guest sees a /24 with itself, a gateway that is also its DNS server, and
// a default route through the gateway. Every other address, on the subnet or
// beyond it, is reached through the gateway: the ARP responder answers for
// any address but the guest's own with the gateway's MAC, so the addresses
// the egress side hands out for host aliases may lie anywhere.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "daemon/net/stack/tcp_connection.hpp"
#include "daemon/net/wire/address.hpp"

namespace sandboxd::net {

struct StackConfig {
  wire::MacAddress gateway_mac{{0x02, 0x73, 0x62, 0x00, 0x00, 0x01}};
  wire::MacAddress guest_mac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
  wire::Ipv4Address gateway_ip{{10, 0, 2, 2}};
  wire::Ipv4Address guest_ip{{10, 0, 2, 15}};
  std::uint8_t prefix_length = 24;
  // The link MTU: QEMU's virtio-net host_mtu, and what DHCP tells the guest.
  std::uint16_t mtu = 1500;
  std::chrono::seconds lease_time{86400};

  // Bounds on guest-created state.
  std::size_t max_tcp_connections = 256;
  std::size_t max_udp_flows = 256;
  std::chrono::seconds udp_idle_timeout{60};

  TcpSettings tcp;

  wire::Ipv4Address netmask() const {
    return wire::Ipv4Address::from_u32(prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_length));
  }
  // TCP settings with the MSS this link's MTU allows.
  TcpSettings tcp_settings() const {
    TcpSettings s = tcp;
    s.mss = static_cast<std::uint16_t>(mtu - 40);
    return s;
  }
};

}  // namespace sandboxd::net
