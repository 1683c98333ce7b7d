#include "daemon/net/egress/dns_answer.hpp"

namespace sandboxd::net {
using wire::DnsRcode;
using wire::DnsRepr;
using wire::DnsType;

namespace {

// A reply skeleton: the query's id, flags and question echoed.
DnsRepr reply_to(const DnsRepr& query, DnsRcode rcode) {
  DnsRepr reply;
  reply.id = query.id;
  reply.response = true;
  reply.opcode = query.opcode;
  reply.recursion_desired = query.recursion_desired;
  reply.recursion_available = true;
  reply.rcode = rcode;
  reply.questions = query.questions;
  return reply;
}

Bytes encode(DnsRepr reply, std::size_t max_reply) {
  Bytes out;
  bool ok = static_cast<bool>(reply.emit(out));
  while (ok && out.size() > max_reply && !reply.answers.empty()) {
    reply.answers.pop_back();
    reply.truncated = true;
    out.clear();
    ok = static_cast<bool>(reply.emit(out));
  }
  if (!ok) {
    // Only an invalid name fails emit, and the names here come from a query
    // that parsed; answer without the question rather than not at all.
    DnsRepr bare = reply;
    bare.questions.clear();
    bare.answers.clear();
    bare.rcode = DnsRcode::kServerFailure;
    out.clear();
    (void)bare.emit(out);
  }
  return out;
}

DnsPlan reply_plan(const DnsRepr& reply, std::size_t max_reply) {
  return DnsPlan{DnsPlan::Kind::kReply, encode(reply, max_reply), {}};
}

DnsRcode denied_name_rcode(const EgressPolicy& policy) {
  return policy.rules().denied_names == policy::DeniedNameAnswer::kRefused ? DnsRcode::kRefused : DnsRcode::kNameError;
}

}  // namespace

DnsPlan plan_dns_answer(ByteSpan message, const EgressPolicy& policy, std::size_t max_reply) {
  auto parsed = DnsRepr::parse(message);
  if (!parsed) {
    if (message.size() < DnsRepr::kHeaderLength) return {};
    DnsRepr header;
    ByteReader r(message);
    header.id = r.u16();
    return reply_plan(reply_to(header, DnsRcode::kFormatError), max_reply);
  }
  const DnsRepr& query = *parsed;
  if (query.response) return reply_plan(reply_to(DnsRepr{.id = query.id}, DnsRcode::kFormatError), max_reply);
  if (query.opcode != 0) return reply_plan(reply_to(query, DnsRcode::kNotImplemented), max_reply);
  if (query.questions.size() != 1) return reply_plan(reply_to(query, DnsRcode::kFormatError), max_reply);

  const wire::DnsQuestion& question = query.questions.front();
  if (question.dns_class != wire::kDnsClassIn) return reply_plan(reply_to(query, DnsRcode::kRefused), max_reply);

  // A name no rule could allow is answered here, without any lookup: the
  // host's resolver must not carry a denied name anywhere.
  if (!policy.may_resolve(question.name)) return reply_plan(reply_to(query, denied_name_rcode(policy)), max_reply);
  if (auto alias = policy.resolve_alias(question.name)) {
    DnsRepr reply = reply_to(query, DnsRcode::kNoError);
    reply.authoritative = true;
    if (question.type == DnsType::kA)
      reply.answers.push_back({question.name, DnsType::kA, wire::kDnsClassIn, kDnsAnswerTtl, *alias});
    return reply_plan(reply, max_reply);
  }
  // Only A is looked up. AAAA gets no records because the guest's network
  // is IPv4 only (an empty answer makes its resolver use A at once); every
  // other type gets none either, so TXT, NULL and the like carry nothing in
  // either direction.
  if (question.type != DnsType::kA) return reply_plan(reply_to(query, DnsRcode::kNoError), max_reply);
  return DnsPlan{DnsPlan::Kind::kResolve, {}, query};
}

Bytes dns_resolved_reply(const DnsRepr& query, std::span<const wire::Ipv4Address> addresses, ResolvedOutcome outcome,
                         std::size_t max_reply) {
  switch (outcome) {
    case ResolvedOutcome::kFailed: return encode(reply_to(query, DnsRcode::kServerFailure), max_reply);
    case ResolvedOutcome::kNoSuchName: return encode(reply_to(query, DnsRcode::kNameError), max_reply);
    case ResolvedOutcome::kRefused: return encode(reply_to(query, DnsRcode::kRefused), max_reply);
    case ResolvedOutcome::kFound: break;
  }
  DnsRepr reply = reply_to(query, DnsRcode::kNoError);
  const wire::DnsQuestion& question = query.questions.front();
  if (question.type == DnsType::kA) {
    for (const auto& a : addresses) reply.answers.push_back({question.name, DnsType::kA, wire::kDnsClassIn, kDnsAnswerTtl, a});
  }
  return encode(reply, max_reply);
}

}  // namespace sandboxd::net
