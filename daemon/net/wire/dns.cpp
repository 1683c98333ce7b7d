#include "daemon/net/wire/dns.hpp"

namespace sandboxd::net::wire {

namespace {

constexpr std::size_t kMaxWireNameLength = 255;
constexpr std::size_t kRecordFixedLength = 10;  // type, class, TTL, data length

bool is_name_byte(std::uint8_t b) { return b >= 0x21 && b <= 0x7e && b != '.' && b != '\\'; }

// Follows the name at `offset` through its compression pointers, handing each
// label to `on_label`. On success `offset` is just past the name's own bytes
// (its labels up to the terminating zero or the first pointer).
template <class OnLabel>
Expected<void> walk_name(ByteSpan message, std::size_t& offset, OnLabel&& on_label) {
  std::size_t pos = offset;
  std::size_t lowest = offset;  // every pointer must point below everything read so far
  std::size_t wire_length = 1;  // the terminating zero
  int jumps = 0;
  bool jumped = false;
  for (;;) {
    if (pos >= message.size()) return parse_error("dns: name runs past the message");
    const auto length = static_cast<std::uint8_t>(message[pos]);
    if ((length & 0xc0) == 0xc0) {
      if (pos + 1 >= message.size()) return parse_error("dns: compression pointer is cut short");
      const std::size_t target = (std::size_t{length & 0x3fu} << 8) | static_cast<std::uint8_t>(message[pos + 1]);
      if (target >= lowest) return parse_error("dns: compression pointer does not point backwards");
      if (++jumps > DnsRepr::kMaxPointerJumps) return parse_error("dns: name follows too many compression pointers");
      if (!jumped) offset = pos + 2;
      jumped = true;
      lowest = target;
      pos = target;
      continue;
    }
    if ((length & 0xc0) != 0) return parse_error("dns: label type is not supported");
    if (length == 0) {
      if (!jumped) offset = pos + 1;
      return {};
    }
    if (length > message.size() - pos - 1) return parse_error("dns: label runs past the message");
    wire_length += 1u + length;
    if (wire_length > kMaxWireNameLength) return parse_error("dns: name is longer than 255 bytes");
    if (auto ok = on_label(message.subspan(pos + 1, length)); !ok) return ok;
    pos += 1u + length;
  }
}

// A name as text, for questions, owners and CNAME targets.
Expected<std::string> read_name(ByteSpan message, std::size_t& offset) {
  std::string text;
  auto ok = walk_name(message, offset, [&](ByteSpan label) -> Expected<void> {
    for (std::byte b : label) {
      if (!is_name_byte(static_cast<std::uint8_t>(b))) {
        return parse_error("dns: label holds a dot, a backslash or an unprintable byte");
      }
    }
    if (!text.empty()) text += '.';
    text += as_chars(label);
    return {};
  });
  if (!ok) return Unexpected{ok.error()};
  return text;
}

// A name inside record data, expanded to uncompressed wire form and appended
// to `out`. Its label bytes are kept as they are.
Expected<void> expand_name(ByteSpan message, std::size_t& offset, Bytes& out) {
  auto ok = walk_name(message, offset, [&](ByteSpan label) -> Expected<void> {
    out.push_back(static_cast<std::byte>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    return {};
  });
  if (!ok) return ok;
  out.push_back(std::byte{0});
  return {};
}

Expected<DnsRdata> parse_rdata(ByteSpan message, std::size_t start, std::size_t length, DnsType type,
                               std::uint16_t dns_class) {
  const ByteSpan raw = message.subspan(start, length);
  const std::size_t end = start + length;
  const auto mismatch = [] { return parse_error("dns: record data length does not match its contents"); };

  // Types whose data holds names: a fixed prefix, names, a fixed suffix.
  std::size_t prefix = 0, names = 0, suffix = 0;
  switch (type) {
    case DnsType::kA:
      if (dns_class != kDnsClassIn) break;
      if (length != 4) return parse_error("dns: A record data is not 4 bytes");
      return DnsRdata{std::in_place_type<Ipv4Address>,
                      Ipv4Address{{static_cast<std::uint8_t>(raw[0]), static_cast<std::uint8_t>(raw[1]),
                                   static_cast<std::uint8_t>(raw[2]), static_cast<std::uint8_t>(raw[3])}}};
    case DnsType::kAaaa: {
      if (dns_class != kDnsClassIn) break;
      if (length != 16) return parse_error("dns: AAAA record data is not 16 bytes");
      ByteReader r(raw);
      return DnsRdata{std::in_place_type<Ipv6Address>, Ipv6Address::read(r)};
    }
    case DnsType::kCname: {
      std::size_t offset = start;
      auto target = read_name(message, offset);
      if (!target) return Unexpected{target.error()};
      if (offset != end) return mismatch();
      return DnsRdata{std::in_place_type<std::string>, std::move(*target)};
    }
    case DnsType::kNs:
    case DnsType::kPtr:
      names = 1;
      break;
    case DnsType::kMx:
      prefix = 2;
      names = 1;
      break;
    case DnsType::kSrv:
      prefix = 6;
      names = 1;
      break;
    case DnsType::kSoa:
      names = 2;
      suffix = 20;
      break;
    default:
      break;
  }
  if (names == 0) return DnsRdata{std::in_place_type<Bytes>, raw.begin(), raw.end()};

  if (length < prefix) return mismatch();
  Bytes out(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(prefix));
  std::size_t offset = start + prefix;
  for (std::size_t i = 0; i < names; ++i) {
    if (auto ok = expand_name(message, offset, out); !ok) return Unexpected{ok.error()};
    if (offset > end) return mismatch();
  }
  if (end - offset != suffix) return mismatch();
  out.insert(out.end(), message.begin() + static_cast<std::ptrdiff_t>(offset),
             message.begin() + static_cast<std::ptrdiff_t>(end));
  return DnsRdata{std::in_place_type<Bytes>, std::move(out)};
}

Expected<DnsQuestion> parse_question(ByteSpan message, std::size_t& offset) {
  auto name = read_name(message, offset);
  if (!name) return Unexpected{name.error()};
  if (message.size() - offset < 4) return parse_error("dns: question is cut short");
  ByteReader r(message.subspan(offset, 4));
  DnsQuestion q;
  q.name = std::move(*name);
  q.type = static_cast<DnsType>(r.u16());
  q.dns_class = r.u16();
  offset += 4;
  return q;
}

Expected<DnsRecord> parse_record(ByteSpan message, std::size_t& offset) {
  auto name = read_name(message, offset);
  if (!name) return Unexpected{name.error()};
  if (message.size() - offset < kRecordFixedLength) return parse_error("dns: record is cut short");
  ByteReader r(message.subspan(offset, kRecordFixedLength));
  DnsRecord rec;
  rec.name = std::move(*name);
  rec.type = static_cast<DnsType>(r.u16());
  rec.dns_class = r.u16();
  rec.ttl = r.u32();
  const std::size_t length = r.u16();
  offset += kRecordFixedLength;
  if (length > message.size() - offset) return parse_error("dns: record data runs past the message");
  auto data = parse_rdata(message, offset, length, rec.type, rec.dns_class);
  if (!data) return Unexpected{data.error()};
  rec.data = std::move(*data);
  offset += length;
  return rec;
}

Expected<void> parse_records(ByteSpan message, std::size_t& offset, std::size_t count, std::vector<DnsRecord>& out) {
  for (std::size_t i = 0; i < count; ++i) {
    auto rec = parse_record(message, offset);
    if (!rec) return Unexpected{rec.error()};
    out.push_back(std::move(*rec));
  }
  return {};
}

Expected<void> check_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return {};  // the root
  if (name.size() > DnsRepr::kMaxNameLength) return parse_error("dns: name is longer than 253 characters");
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return parse_error("dns: name has an empty label");
      label = 0;
      continue;
    }
    if (!is_name_byte(static_cast<std::uint8_t>(c))) {
      return parse_error("dns: name holds a backslash or an unprintable byte");
    }
    if (++label > DnsRepr::kMaxLabelLength) return parse_error("dns: label is longer than 63 bytes");
  }
  if (label == 0) return parse_error("dns: name has an empty label");
  return {};
}

Expected<void> write_name(ByteWriter& w, std::string_view name) {
  if (auto ok = check_name(name); !ok) return ok;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  while (!name.empty()) {
    const std::size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    w.u8(static_cast<std::uint8_t>(label.size()));
    w.bytes(as_bytes(label));
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  w.u8(0);
  return {};
}

Expected<void> write_record(Bytes& out, const DnsRecord& rec) {
  ByteWriter w(out);
  if (auto ok = write_name(w, rec.name); !ok) return ok;
  w.u16(static_cast<std::uint16_t>(rec.type));
  w.u16(rec.dns_class);
  w.u32(rec.ttl);
  const std::size_t length_at = w.size();
  w.u16(0);
  if (const auto* raw = std::get_if<Bytes>(&rec.data)) {
    w.bytes(*raw);
  } else if (const auto* v4 = std::get_if<Ipv4Address>(&rec.data)) {
    v4->write(w);
  } else if (const auto* v6 = std::get_if<Ipv6Address>(&rec.data)) {
    v6->write(w);
  } else if (auto ok = write_name(w, std::get<std::string>(rec.data)); !ok) {
    return ok;
  }
  const std::size_t length = w.size() - length_at - 2;
  if (length > 0xffff) return parse_error("dns: record data is longer than 65535 bytes");
  w.patch_u16(length_at, static_cast<std::uint16_t>(length));
  return {};
}

}  // namespace

bool is_valid_dns_name(std::string_view name) { return check_name(name).has_value(); }

Expected<DnsRepr> DnsRepr::parse(ByteSpan message) {
  if (message.size() < kHeaderLength) return parse_error("dns: message is shorter than its header");
  if (message.size() > kMaxMessageLength) return parse_error("dns: message is longer than 65535 bytes");
  ByteReader r(message);
  DnsRepr m;
  m.id = r.u16();
  const std::uint8_t flags_hi = r.u8();
  const std::uint8_t flags_lo = r.u8();
  m.response = (flags_hi & 0x80) != 0;
  m.opcode = static_cast<std::uint8_t>((flags_hi >> 3) & 0x0f);
  m.authoritative = (flags_hi & 0x04) != 0;
  m.truncated = (flags_hi & 0x02) != 0;
  m.recursion_desired = (flags_hi & 0x01) != 0;
  m.recursion_available = (flags_lo & 0x80) != 0;
  m.authentic_data = (flags_lo & 0x20) != 0;
  m.checking_disabled = (flags_lo & 0x10) != 0;
  m.rcode = static_cast<DnsRcode>(flags_lo & 0x0f);
  const std::size_t questions = r.u16();
  const std::size_t answers = r.u16();
  const std::size_t authorities = r.u16();
  const std::size_t additionals = r.u16();

  std::size_t offset = kHeaderLength;
  for (std::size_t i = 0; i < questions; ++i) {
    auto q = parse_question(message, offset);
    if (!q) return Unexpected{q.error()};
    m.questions.push_back(std::move(*q));
  }
  if (auto ok = parse_records(message, offset, answers, m.answers); !ok) return Unexpected{ok.error()};
  if (auto ok = parse_records(message, offset, authorities, m.authorities); !ok) return Unexpected{ok.error()};
  if (auto ok = parse_records(message, offset, additionals, m.additionals); !ok) return Unexpected{ok.error()};
  return m;
}

Expected<void> DnsRepr::emit(Bytes& out) const {
  const std::size_t start = out.size();
  const auto fail = [&](ParseError e) -> Expected<void> {
    out.resize(start);
    return Unexpected{e};
  };
  for (std::size_t n : {questions.size(), answers.size(), authorities.size(), additionals.size()}) {
    if (n > 0xffff) return fail({"dns: a section has more than 65535 entries"});
  }

  ByteWriter w(out);
  w.u16(id);
  std::uint8_t flags_hi = static_cast<std::uint8_t>((opcode & 0x0f) << 3);
  if (response) flags_hi |= 0x80;
  if (authoritative) flags_hi |= 0x04;
  if (truncated) flags_hi |= 0x02;
  if (recursion_desired) flags_hi |= 0x01;
  std::uint8_t flags_lo = static_cast<std::uint8_t>(static_cast<std::uint8_t>(rcode) & 0x0f);
  if (recursion_available) flags_lo |= 0x80;
  if (authentic_data) flags_lo |= 0x20;
  if (checking_disabled) flags_lo |= 0x10;
  w.u8(flags_hi);
  w.u8(flags_lo);
  w.u16(static_cast<std::uint16_t>(questions.size()));
  w.u16(static_cast<std::uint16_t>(answers.size()));
  w.u16(static_cast<std::uint16_t>(authorities.size()));
  w.u16(static_cast<std::uint16_t>(additionals.size()));

  for (const DnsQuestion& q : questions) {
    if (auto ok = write_name(w, q.name); !ok) return fail(ok.error());
    w.u16(static_cast<std::uint16_t>(q.type));
    w.u16(q.dns_class);
  }
  for (const auto* section : {&answers, &authorities, &additionals}) {
    for (const DnsRecord& rec : *section) {
      if (auto ok = write_record(out, rec); !ok) return fail(ok.error());
    }
  }
  if (out.size() - start > kMaxMessageLength) return fail({"dns: message is longer than 65535 bytes"});
  return {};
}

}  // namespace sandboxd::net::wire
