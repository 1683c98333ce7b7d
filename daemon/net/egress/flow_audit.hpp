// What egress reports about every new flow a guest opens, for whoever keeps
// the sandbox's record (an audit log, the API's event stream): one FlowAudit
// per flow, made when its fate is decided — TCP connections, UDP flows, the
// ones refused, and the ones the gateway serves itself (its DNS port).
//
// A record says what the policy decided, not how the connection went: an
// allowed TCP flow whose upstream then refuses is counted (tcp connect
// failed) but not reported again. A UDP flow whose host socket cannot be
// opened is reported denied, since its socket is opened at once.
//
// The sink is called on the network's executor, from inside the handling of
// the flow's first packet, so it must be quick and must not call back into
// the network (stop, assign): queue the record and return.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "daemon/net/stack/flow_key.hpp"
#include "daemon/net/wire/address.hpp"

namespace sandboxd::net {

enum class FlowProtocol : std::uint8_t { kTcp, kUdp };
enum class FlowVerdict : std::uint8_t { kAllowed, kDenied };
// Where an allowed flow went: to a host socket (`connected_to`), or to the
// gateway's own DNS server, which answers in place of any upstream.
enum class FlowDestination : std::uint8_t { kNone, kUpstream, kGatewayDns };

std::string_view to_string(FlowProtocol protocol);  // "tcp", "udp"
std::string_view to_string(FlowVerdict verdict);    // "allowed", "denied"
std::string_view to_string(FlowDestination where);  // "none", "upstream", "dns"

struct FlowEndpoint {
  wire::Ipv4Address ip;
  std::uint16_t port = 0;

  friend bool operator==(const FlowEndpoint&, const FlowEndpoint&) = default;
};

struct FlowAudit {
  std::chrono::system_clock::time_point time;
  std::string sandbox_id;  // empty before the network is assigned
  std::string owner;
  FlowProtocol protocol = FlowProtocol::kTcp;
  FlowKey key;  // the guest's end and the address the guest asked for
  // The name the flow was judged by: a host alias's, or the one the
  // sandbox's DNS answered the address for; empty for an IP literal.
  std::string name;
  FlowVerdict verdict = FlowVerdict::kDenied;
  std::string reason;  // why, in words: "host alias", "egress denied by policy", ...
  FlowDestination destination = FlowDestination::kNone;
  FlowEndpoint connected_to;  // kUpstream: the host-side address and port

  // "tcp 10.0.2.15:40000 -> 10.0.2.100:80 allowed (host alias), connected to 127.0.0.1:80"
  std::string to_text() const;
};

using FlowAuditSink = std::function<void(const FlowAudit&)>;

}  // namespace sandboxd::net
