// What the gateway's DNS server does with one query from the guest: a pure
// decision, so the rules can be read and tested apart from any socket.
//
// Answered at once: host aliases (A: the alias's guest address; any other
// type: no records), and everything under deny-all (NXDOMAIN: the name does
// not exist for this sandbox). Under allow-all, A and AAAA questions for
// other names are resolved on the host (kResolve); the reply then carries the
// IPv4 addresses found, and AAAA gets an empty answer, because the guest's
// network is IPv4 only and an empty AAAA makes its resolver use A at once.
// Other types are refused. Malformed queries get FORMERR when their id can
// be read, and are dropped otherwise; responses and non-query opcodes are
// answered FORMERR and NOTIMP.
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

// The reply to a kResolve query once the host's resolver has answered:
// `addresses` found (A records), or none with `name_exists` false (NXDOMAIN),
// or `failed` (SERVFAIL).
Bytes dns_resolved_reply(const wire::DnsRepr& query, std::span<const wire::Ipv4Address> addresses, bool name_exists,
                         bool failed, std::size_t max_reply);

// TTL of the answers the gateway builds, for aliases and for names resolved
// on the host alike.
inline constexpr std::uint32_t kDnsAnswerTtl = 60;

}  // namespace sandboxd::net
