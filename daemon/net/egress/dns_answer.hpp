// What the gateway's DNS server does with one query from the guest: a pure
// decision, so the rules can be read and tested apart from any socket.
//
// A name no rule of the sandbox could allow (EgressPolicy::may_resolve) is
// answered at once, NXDOMAIN or REFUSED as the policy says, and never looked
// up. Host aliases the rules allow are answered at once too (A: the alias's
// guest address; any other type: no records). For other allowed names an A
// question is resolved on the host (kResolve), and the reply carries the
// addresses found that the rules let the guest have (the server filters
// them and pins each to the name: name_pins.hpp); AAAA and every other type
// get an empty answer, since the guest's network is IPv4 only and no other
// record type is carried (no TXT or NULL tunnels). Only single-question
// queries of class IN are answered; malformed queries get FORMERR when their
// id can be read, and are dropped otherwise; responses and non-query opcodes
// are answered FORMERR and NOTIMP.
#pragma once

#include <cstdint>
#include <span>

#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/wire/dns.hpp"
#include "protocol/bytes.hpp"

namespace sandboxd::net {

struct DnsPlan {
  enum class Kind { kReply, kResolve, kDrop };
  Kind kind = Kind::kDrop;
  Bytes reply;            // kReply
  wire::DnsRepr query;    // kResolve: the parsed query, one question
};

// Replies never exceed `max_reply`: answers that do not fit are left out and
// the reply is marked truncated, so the guest asks again over TCP. Over UDP
// that is 512 (EDNS buffer sizes are not honoured), over TCP 65535.
inline constexpr std::size_t kDnsUdpReplyLimit = 512;
inline constexpr std::size_t kDnsTcpReplyLimit = 65535;

DnsPlan plan_dns_answer(ByteSpan message, const EgressPolicy& policy, std::size_t max_reply);

// How the host's lookup of a kResolve query ended: addresses found (those
// the guest may have), no such name (NXDOMAIN), a failure (SERVFAIL), or
// addresses that the rules refuse every one of (REFUSED: an allowed name
// resolving or rebinding to a private or metadata address).
enum class ResolvedOutcome { kFound, kNoSuchName, kFailed, kRefused };

// The reply to a kResolve query once the host's resolver has answered.
Bytes dns_resolved_reply(const wire::DnsRepr& query, std::span<const wire::Ipv4Address> addresses,
                         ResolvedOutcome outcome, std::size_t max_reply);

// TTL of the answers the gateway builds, for aliases and for names resolved
// on the host alike.
inline constexpr std::uint32_t kDnsAnswerTtl = 60;

}  // namespace sandboxd::net
