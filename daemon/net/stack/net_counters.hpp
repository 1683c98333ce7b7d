// What one sandbox's network stack has seen and done, for the API and
// `sandboxd-host run --net-stats`. Plain numbers, not atomics: the stack
// increments them on the thread that runs its network's executor (the
// daemon's one io_context thread), and readers on that same thread copy
// the struct or print it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sandboxd::net {

// Why a frame from the guest was not used. Every dropped frame is counted
// under exactly one reason.
enum class DropReason : std::uint8_t {
  kMalformedEthernet,
  kNotForGateway,        // unicast to another MAC
  kSpoofedSource,        // source MAC or IPv4 address not the guest's
  kUnsupportedEtherType, // IPv6, VLAN, anything but IPv4 and ARP
  kMalformedArp,
  kMalformedIpv4,
  kFragment,             // fragments are not reassembled (see wire/ipv4.hpp)
  kUnsupportedProtocol,  // IP protocols other than ICMP, UDP, TCP
  kMalformedIcmp,
  kUnsupportedIcmp,      // anything but echo requests to the gateway
  kMalformedUdp,
  kMalformedDhcp,
  kMalformedTcp,
  kTcpNoConnection,      // answered with RST where the segment asked for one
  kTcpConnectionLimit,
  kUdpFlowLimit,
  kCount,
};

std::string_view to_string(DropReason reason);

// Appends "name: value\n", the line format of every counter listing.
void append_counter_line(std::string& out, std::string_view name, std::uint64_t value);

struct NetCounters {
  std::uint64_t frames_in = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t arp_replies = 0;
  std::uint64_t icmp_echo_replies = 0;
  std::uint64_t dhcp_replies = 0;
  std::uint64_t tcp_connections_opened = 0;
  std::uint64_t tcp_connections_refused = 0;
  std::uint64_t tcp_embryonic_evicted = 0;  // half-open, pushed out by newer SYNs at the limit
  std::uint64_t tcp_time_wait_reclaimed = 0;  // in TIME_WAIT, made room for newer SYNs at the limit
  std::uint64_t tcp_retransmitted_segments = 0;
  std::uint64_t udp_flows_opened = 0;
  std::uint64_t udp_datagrams_in = 0;
  std::uint64_t udp_datagrams_out = 0;
  std::uint64_t udp_datagrams_too_big = 0;  // for the guest, larger than the link MTU
  std::uint64_t tcp_connections_active = 0;
  std::uint64_t udp_flows_active = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(DropReason::kCount)> drops{};

  std::uint64_t& drop(DropReason r) { return drops[static_cast<std::size_t>(r)]; }
  std::uint64_t drop(DropReason r) const { return drops[static_cast<std::size_t>(r)]; }
  std::uint64_t total_drops() const;

  // Multi-line human-readable form: the non-zero counters, drops by reason.
  std::string to_text() const;
};

}  // namespace sandboxd::net
