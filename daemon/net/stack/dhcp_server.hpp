// The DHCP server of one sandbox's link: it has exactly one client, the
// guest, and exactly one address to give it.
//
// DISCOVER is answered with an OFFER, REQUEST for the guest's address with an
// ACK (a REQUEST for any other address, or naming another server, with a
// NAK), INFORM with an ACK that carries configuration but no lease. RELEASE
// and DECLINE change nothing: the address is the guest's for the VM's life.
// Messages from any hardware address but the guest's are ignored, as are
// replies (op 2) and messages without a DHCP message type.
//
// Offers carry the subnet mask, router, DNS server (the gateway), lease time
// with T1/T2, and the link MTU, so the guest needs no other configuration.
#pragma once

#include <optional>

#include "daemon/net/stack/stack_config.hpp"
#include "daemon/net/wire/dhcp.hpp"

namespace sandboxd::net {

class DhcpServer {
 public:
  explicit DhcpServer(const StackConfig& config) : config_(config) {}

  // The reply to `request`, if it deserves one.
  std::optional<wire::DhcpRepr> answer(const wire::DhcpRepr& request) const;

 private:
  wire::DhcpRepr reply_to(const wire::DhcpRepr& request, wire::DhcpMessageType type) const;

  const StackConfig& config_;
};

}  // namespace sandboxd::net
