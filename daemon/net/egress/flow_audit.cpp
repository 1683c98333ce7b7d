#include "daemon/net/egress/flow_audit.hpp"

namespace sandboxd::net {

std::string_view to_string(FlowProtocol protocol) { return protocol == FlowProtocol::kTcp ? "tcp" : "udp"; }

std::string_view to_string(FlowVerdict verdict) { return verdict == FlowVerdict::kAllowed ? "allowed" : "denied"; }

std::string_view to_string(FlowDestination where) {
  switch (where) {
    case FlowDestination::kNone: return "none";
    case FlowDestination::kUpstream: return "upstream";
    case FlowDestination::kGatewayDns: return "dns";
  }
  return "none";
}

std::string FlowAudit::to_text() const {
  std::string out = std::string(to_string(protocol)) + " " + key.to_string() + " " + std::string(to_string(verdict)) +
                    " (" + reason + ")";
  if (destination == FlowDestination::kUpstream)
    out += ", connected to " + connected_to.ip.to_string() + ":" + std::to_string(connected_to.port);
  else if (destination == FlowDestination::kGatewayDns)
    out += ", served by the gateway's dns";
  return out;
}

}  // namespace sandboxd::net
