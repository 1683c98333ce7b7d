// DHCPv4 messages (RFC 2131) and the options a guest's client and our server
// exchange (RFC 2132).
//
// Owns: the BOOTP header fields a DHCP server uses (op, xid, secs, the
// broadcast flag, ciaddr, yiaddr, siaddr, giaddr, an Ethernet chaddr), the
// magic cookie, and the options listed in DhcpRepr. Without the cookie a
// message is plain BOOTP and is refused.
//
// Options are read from the options field and, when the overload option asks
// for it, from the `file` and then the `sname` field. An option may appear in
// several pieces; the pieces are joined before the value is read (RFC 3396),
// and emit splits values longer than 255 bytes the same way. Unknown options
// are skipped. A known option whose joined length does not fit its kind is
// malformed, as is one that runs past its field; a missing end option is
// tolerated. Emit puts the message type first and an end option last, and pads
// the message to the 300-byte BOOTP minimum some clients still expect.
//
// Deliberately not done: leases, address choice, relay agent handling, client
// identifiers: those are the server's, or not needed for one guest per link.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/net/wire/address.hpp"
#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::wire {

enum class BootpOp : std::uint8_t { kRequest = 1, kReply = 2 };

enum class DhcpMessageType : std::uint8_t {
  kDiscover = 1,
  kOffer = 2,
  kRequest = 3,
  kDecline = 4,
  kAck = 5,
  kNak = 6,
  kRelease = 7,
  kInform = 8,
};

// Option codes, for parameter request lists.
enum DhcpOption : std::uint8_t {
  kDhcpOptionPad = 0,
  kDhcpOptionSubnetMask = 1,
  kDhcpOptionRouter = 3,
  kDhcpOptionDnsServers = 6,
  kDhcpOptionHostname = 12,
  kDhcpOptionDomainName = 15,
  kDhcpOptionInterfaceMtu = 26,
  kDhcpOptionRequestedIp = 50,
  kDhcpOptionLeaseTime = 51,
  kDhcpOptionOverload = 52,
  kDhcpOptionMessageType = 53,
  kDhcpOptionServerId = 54,
  kDhcpOptionParameterRequestList = 55,
  kDhcpOptionRenewalTime = 58,
  kDhcpOptionRebindingTime = 59,
  kDhcpOptionEnd = 255,
};

struct DhcpRepr {
  static constexpr std::uint16_t kServerPort = 67;
  static constexpr std::uint16_t kClientPort = 68;
  static constexpr std::size_t kFixedLength = 240;  // BOOTP header and magic cookie
  static constexpr std::size_t kMinEmitLength = 300;

  BootpOp op = BootpOp::kRequest;
  std::uint8_t hops = 0;
  std::uint32_t xid = 0;
  std::uint16_t secs = 0;
  bool broadcast = false;  // the client cannot receive unicast before it is configured
  Ipv4Address ciaddr;      // client's current address (RENEW, INFORM)
  Ipv4Address yiaddr;      // "your" address, offered or assigned by the server
  Ipv4Address siaddr;      // next server (boot), usually zero
  Ipv4Address giaddr;      // relay agent
  MacAddress chaddr;

  // Options; absent or empty when the message did not carry them.
  std::optional<DhcpMessageType> message_type;  // values above 8 are kept as they are
  std::optional<Ipv4Address> requested_ip;
  std::optional<Ipv4Address> server_id;
  std::optional<Ipv4Address> subnet_mask;
  std::vector<Ipv4Address> routers;
  std::vector<Ipv4Address> dns_servers;
  std::optional<std::uint32_t> lease_time;      // seconds; 0xffffffff is infinite
  std::optional<std::uint32_t> renewal_time;    // T1, seconds
  std::optional<std::uint32_t> rebinding_time;  // T2, seconds
  std::optional<std::uint16_t> interface_mtu;
  std::string hostname;     // trailing NULs some clients add are dropped
  std::string domain_name;  // likewise
  std::vector<std::uint8_t> parameter_request_list;

  static Expected<DhcpRepr> parse(ByteSpan message);
  void emit(Bytes& out) const;

  friend bool operator==(const DhcpRepr&, const DhcpRepr&) = default;
};

}  // namespace sandboxd::net::wire
