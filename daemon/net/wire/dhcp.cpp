#include "daemon/net/wire/dhcp.hpp"

#include <algorithm>

namespace sandboxd::net::wire {

namespace {

constexpr std::uint32_t kMagicCookie = 0x63825363;
constexpr std::uint8_t kHardwareEthernet = 1;
constexpr std::uint16_t kBroadcastFlag = 0x8000;
constexpr std::size_t kSnameOffset = 44;
constexpr std::size_t kSnameLength = 64;
constexpr std::size_t kFileOffset = 108;
constexpr std::size_t kFileLength = 128;
constexpr std::size_t kChaddrLength = 16;
constexpr std::size_t kMaxPiece = 255;

struct OptionPiece {
  std::uint8_t code;
  ByteSpan data;
};

// Appends the options of one field to `pieces`, stopping at the end option.
Expected<void> split_options(ByteSpan field, std::vector<OptionPiece>& pieces) {
  ByteReader r(field);
  while (!r.at_end()) {
    const std::uint8_t code = r.u8();
    if (code == kDhcpOptionPad) continue;
    if (code == kDhcpOptionEnd) break;
    if (r.at_end()) return parse_error("dhcp: option has no length byte");
    const std::uint8_t length = r.u8();
    if (length > r.remaining()) return parse_error("dhcp: option runs past its field");
    pieces.push_back({code, r.take(length)});
  }
  return {};
}

// The value of option `code`, its pieces joined in order (RFC 3396). A value in
// one piece is returned in place; a joined one lives in `scratch`.
std::optional<ByteSpan> option_value(const std::vector<OptionPiece>& pieces, std::uint8_t code, Bytes& scratch) {
  const OptionPiece* first = nullptr;
  std::size_t count = 0;
  for (const auto& p : pieces) {
    if (p.code != code) continue;
    if (count++ == 0) first = &p;
  }
  if (count == 0) return std::nullopt;
  if (count == 1) return first->data;
  scratch.clear();
  for (const auto& p : pieces) {
    if (p.code == code) scratch.insert(scratch.end(), p.data.begin(), p.data.end());
  }
  return ByteSpan(scratch);
}

Expected<std::vector<Ipv4Address>> read_address_list(ByteSpan value, const char* bad_length) {
  if (value.empty() || value.size() % 4 != 0) return parse_error(bad_length);
  std::vector<Ipv4Address> out;
  ByteReader r(value);
  while (!r.at_end()) out.push_back(Ipv4Address::read(r));
  return out;
}

std::string read_text(ByteSpan value) {
  std::string_view s = as_chars(value);
  while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
  return std::string(s);
}

void put_option(ByteWriter& w, std::uint8_t code, ByteSpan value) {
  do {
    const std::size_t n = std::min(value.size(), kMaxPiece);
    w.u8(code);
    w.u8(static_cast<std::uint8_t>(n));
    w.bytes(value.first(n));
    value = value.subspan(n);
  } while (!value.empty());
}

void put_u8(ByteWriter& w, std::uint8_t code, std::uint8_t v) {
  const std::byte b[1] = {static_cast<std::byte>(v)};
  put_option(w, code, b);
}

void put_u16(ByteWriter& w, std::uint8_t code, std::uint16_t v) {
  const std::byte b[2] = {static_cast<std::byte>(v >> 8), static_cast<std::byte>(v)};
  put_option(w, code, b);
}

void put_u32(ByteWriter& w, std::uint8_t code, std::uint32_t v) {
  const std::byte b[4] = {static_cast<std::byte>(v >> 24), static_cast<std::byte>(v >> 16),
                          static_cast<std::byte>(v >> 8), static_cast<std::byte>(v)};
  put_option(w, code, b);
}

void put_address(ByteWriter& w, std::uint8_t code, Ipv4Address a) { put_u32(w, code, a.to_u32()); }

void put_address_list(ByteWriter& w, std::uint8_t code, const std::vector<Ipv4Address>& list) {
  if (list.empty()) return;
  Bytes value;
  ByteWriter v(value);
  for (const auto& a : list) a.write(v);
  put_option(w, code, value);
}

void put_text(ByteWriter& w, std::uint8_t code, const std::string& text) {
  if (!text.empty()) put_option(w, code, as_bytes(text));
}

}  // namespace

Expected<DhcpRepr> DhcpRepr::parse(ByteSpan message) {
  if (message.size() < kFixedLength) return parse_error("dhcp: message is shorter than the BOOTP header");
  ByteReader r(message);
  DhcpRepr d;
  const std::uint8_t op = r.u8();
  if (op != 1 && op != 2) return parse_error("dhcp: op is neither request nor reply");
  d.op = static_cast<BootpOp>(op);
  const std::uint8_t htype = r.u8();
  const std::uint8_t hlen = r.u8();
  if (htype != kHardwareEthernet || hlen != 6) return parse_error("dhcp: hardware address is not Ethernet");
  d.hops = r.u8();
  d.xid = r.u32();
  d.secs = r.u16();
  d.broadcast = (r.u16() & kBroadcastFlag) != 0;
  d.ciaddr = Ipv4Address::read(r);
  d.yiaddr = Ipv4Address::read(r);
  d.siaddr = Ipv4Address::read(r);
  d.giaddr = Ipv4Address::read(r);
  d.chaddr = MacAddress::read(r);
  r.skip(kChaddrLength - 6 + kSnameLength + kFileLength);
  if (r.u32() != kMagicCookie) return parse_error("dhcp: magic cookie is missing (plain BOOTP)");

  std::vector<OptionPiece> pieces;
  if (auto ok = split_options(r.rest(), pieces); !ok) return Unexpected{ok.error()};

  Bytes scratch;
  if (auto v = option_value(pieces, kDhcpOptionOverload, scratch)) {
    if (v->size() != 1) return parse_error("dhcp: overload option length is not 1");
    const auto overload = static_cast<std::uint8_t>((*v)[0]);
    if (overload < 1 || overload > 3) return parse_error("dhcp: overload option is not 1, 2 or 3");
    // RFC 2131 section 4.1: the options field, then `file`, then `sname`.
    if (overload & 1) {
      if (auto ok = split_options(message.subspan(kFileOffset, kFileLength), pieces); !ok)
        return Unexpected{ok.error()};
    }
    if (overload & 2) {
      if (auto ok = split_options(message.subspan(kSnameOffset, kSnameLength), pieces); !ok) {
        return Unexpected{ok.error()};
      }
    }
  }

  if (auto v = option_value(pieces, kDhcpOptionMessageType, scratch)) {
    if (v->size() != 1) return parse_error("dhcp: message type option length is not 1");
    d.message_type = static_cast<DhcpMessageType>((*v)[0]);
  }

  struct AddressOption {
    std::uint8_t code;
    std::optional<Ipv4Address> DhcpRepr::*field;
    const char* bad_length;
  };
  for (const AddressOption& o : {
           AddressOption{kDhcpOptionRequestedIp, &DhcpRepr::requested_ip, "dhcp: requested IP option length is not 4"},
           AddressOption{kDhcpOptionServerId, &DhcpRepr::server_id, "dhcp: server id option length is not 4"},
           AddressOption{kDhcpOptionSubnetMask, &DhcpRepr::subnet_mask, "dhcp: subnet mask option length is not 4"},
       }) {
    if (auto v = option_value(pieces, o.code, scratch)) {
      if (v->size() != 4) return parse_error(o.bad_length);
      ByteReader a(*v);
      d.*o.field = Ipv4Address::read(a);
    }
  }

  if (auto v = option_value(pieces, kDhcpOptionRouter, scratch)) {
    auto list = read_address_list(*v, "dhcp: router option length is not a positive multiple of 4");
    if (!list) return Unexpected{list.error()};
    d.routers = std::move(*list);
  }
  if (auto v = option_value(pieces, kDhcpOptionDnsServers, scratch)) {
    auto list = read_address_list(*v, "dhcp: DNS server option length is not a positive multiple of 4");
    if (!list) return Unexpected{list.error()};
    d.dns_servers = std::move(*list);
  }

  struct SecondsOption {
    std::uint8_t code;
    std::optional<std::uint32_t> DhcpRepr::*field;
    const char* bad_length;
  };
  for (const SecondsOption& o : {
           SecondsOption{kDhcpOptionLeaseTime, &DhcpRepr::lease_time, "dhcp: lease time option length is not 4"},
           SecondsOption{kDhcpOptionRenewalTime, &DhcpRepr::renewal_time, "dhcp: renewal time option length is not 4"},
           SecondsOption{kDhcpOptionRebindingTime, &DhcpRepr::rebinding_time,
                         "dhcp: rebinding time option length is not 4"},
       }) {
    if (auto v = option_value(pieces, o.code, scratch)) {
      if (v->size() != 4) return parse_error(o.bad_length);
      d.*o.field = ByteReader(*v).u32();
    }
  }

  if (auto v = option_value(pieces, kDhcpOptionInterfaceMtu, scratch)) {
    if (v->size() != 2) return parse_error("dhcp: interface MTU option length is not 2");
    d.interface_mtu = ByteReader(*v).u16();
  }
  if (auto v = option_value(pieces, kDhcpOptionHostname, scratch)) d.hostname = read_text(*v);
  if (auto v = option_value(pieces, kDhcpOptionDomainName, scratch)) d.domain_name = read_text(*v);
  if (auto v = option_value(pieces, kDhcpOptionParameterRequestList, scratch)) {
    for (std::byte b : *v) d.parameter_request_list.push_back(static_cast<std::uint8_t>(b));
  }
  return d;
}

void DhcpRepr::emit(Bytes& out) const {
  const std::size_t start = out.size();
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>(op));
  w.u8(kHardwareEthernet);
  w.u8(6);
  w.u8(hops);
  w.u32(xid);
  w.u16(secs);
  w.u16(broadcast ? kBroadcastFlag : 0);
  ciaddr.write(w);
  yiaddr.write(w);
  siaddr.write(w);
  giaddr.write(w);
  chaddr.write(w);
  w.zeros(kChaddrLength - 6 + kSnameLength + kFileLength);
  w.u32(kMagicCookie);

  if (message_type) put_u8(w, kDhcpOptionMessageType, static_cast<std::uint8_t>(*message_type));
  if (server_id) put_address(w, kDhcpOptionServerId, *server_id);
  if (subnet_mask) put_address(w, kDhcpOptionSubnetMask, *subnet_mask);
  put_address_list(w, kDhcpOptionRouter, routers);
  put_address_list(w, kDhcpOptionDnsServers, dns_servers);
  put_text(w, kDhcpOptionDomainName, domain_name);
  put_text(w, kDhcpOptionHostname, hostname);
  if (interface_mtu) put_u16(w, kDhcpOptionInterfaceMtu, *interface_mtu);
  if (requested_ip) put_address(w, kDhcpOptionRequestedIp, *requested_ip);
  if (lease_time) put_u32(w, kDhcpOptionLeaseTime, *lease_time);
  if (renewal_time) put_u32(w, kDhcpOptionRenewalTime, *renewal_time);
  if (rebinding_time) put_u32(w, kDhcpOptionRebindingTime, *rebinding_time);
  if (!parameter_request_list.empty()) {
    Bytes value;
    for (auto code : parameter_request_list) value.push_back(static_cast<std::byte>(code));
    put_option(w, kDhcpOptionParameterRequestList, value);
  }
  w.u8(kDhcpOptionEnd);
  if (out.size() - start < kMinEmitLength) w.zeros(kMinEmitLength - (out.size() - start));
}

}  // namespace sandboxd::net::wire
