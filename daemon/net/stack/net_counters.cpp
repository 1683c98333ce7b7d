#include "daemon/net/stack/net_counters.hpp"

namespace sandboxd::net {

std::string_view to_string(DropReason reason) {
  switch (reason) {
    case DropReason::kMalformedEthernet: return "malformed ethernet";
    case DropReason::kNotForGateway: return "not for the gateway";
    case DropReason::kSpoofedSource: return "spoofed source";
    case DropReason::kUnsupportedEtherType: return "unsupported ethertype";
    case DropReason::kMalformedArp: return "malformed arp";
    case DropReason::kMalformedIpv4: return "malformed ipv4";
    case DropReason::kFragment: return "ipv4 fragment";
    case DropReason::kUnsupportedProtocol: return "unsupported ip protocol";
    case DropReason::kMalformedIcmp: return "malformed icmp";
    case DropReason::kUnsupportedIcmp: return "unsupported icmp";
    case DropReason::kMalformedUdp: return "malformed udp";
    case DropReason::kMalformedDhcp: return "malformed dhcp";
    case DropReason::kMalformedTcp: return "malformed tcp";
    case DropReason::kTcpNoConnection: return "tcp without connection";
    case DropReason::kTcpConnectionLimit: return "tcp connection limit";
    case DropReason::kUdpFlowLimit: return "udp flow limit";
    case DropReason::kCount: break;
  }
  return "unknown";
}

void append_counter_line(std::string& out, std::string_view name, std::uint64_t value) {
  out += name;
  out += ": ";
  out += std::to_string(value);
  out += '\n';
}

std::uint64_t NetCounters::total_drops() const {
  std::uint64_t total = 0;
  for (auto n : drops) total += n;
  return total;
}

std::string NetCounters::to_text() const {
  std::string out;
  auto line = [&](std::string_view name, std::uint64_t value) { append_counter_line(out, name, value); };
  line("frames in", frames_in);
  line("bytes in", bytes_in);
  line("frames out", frames_out);
  line("bytes out", bytes_out);
  line("arp replies", arp_replies);
  line("icmp echo replies", icmp_echo_replies);
  line("dhcp replies", dhcp_replies);
  line("tcp connections opened", tcp_connections_opened);
  line("tcp connections refused", tcp_connections_refused);
  line("tcp half-open connections evicted", tcp_embryonic_evicted);
  line("tcp TIME_WAIT connections reclaimed", tcp_time_wait_reclaimed);
  line("tcp connections active", tcp_connections_active);
  line("tcp retransmitted segments", tcp_retransmitted_segments);
  line("udp flows opened", udp_flows_opened);
  line("udp flows active", udp_flows_active);
  line("udp datagrams in", udp_datagrams_in);
  line("udp datagrams out", udp_datagrams_out);
  line("udp datagrams too big for the link", udp_datagrams_too_big);
  line("dropped frames", total_drops());
  for (std::size_t i = 0; i < drops.size(); ++i) {
    if (drops[i] == 0) continue;
    append_counter_line(out, "  dropped, " + std::string(to_string(static_cast<DropReason>(i))), drops[i]);
  }
  return out;
}

}  // namespace sandboxd::net
