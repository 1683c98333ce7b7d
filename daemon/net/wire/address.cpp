#include "daemon/net/wire/address.hpp"

#include <cstdio>

namespace sandboxd::net::wire {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <std::size_t N>
void read_octets(ByteReader& r, std::array<std::uint8_t, N>& out) {
  ByteSpan b = r.take(N);
  if (b.size() != N) return;
  for (std::size_t i = 0; i < N; ++i) out[i] = static_cast<std::uint8_t>(b[i]);
}

template <std::size_t N>
void write_octets(ByteWriter& w, const std::array<std::uint8_t, N>& in) {
  for (auto o : in) w.u8(o);
}

}  // namespace

std::string MacAddress::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", octets[0], octets[1], octets[2], octets[3], octets[4],
                octets[5]);
  return buf;
}

Expected<MacAddress> MacAddress::parse(std::string_view text) {
  if (text.size() != 17) return parse_error("mac: not six colon-separated hex octets");
  MacAddress m;
  for (std::size_t i = 0; i < 6; ++i) {
    int hi = hex_digit(text[3 * i]);
    int lo = hex_digit(text[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[3 * i + 2] != ':')) {
      return parse_error("mac: not six colon-separated hex octets");
    }
    m.octets[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return m;
}

MacAddress MacAddress::read(ByteReader& r) {
  MacAddress m;
  read_octets(r, m.octets);
  return m;
}

void MacAddress::write(ByteWriter& w) const { write_octets(w, octets); }

std::string Ipv4Address::to_string() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", octets[0], octets[1], octets[2], octets[3]);
  return buf;
}

Expected<Ipv4Address> Ipv4Address::parse(std::string_view text) {
  Ipv4Address a;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != '.') return parse_error("ipv4: address is not a dotted quad");
      ++pos;
    }
    std::size_t start = pos;
    unsigned value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < 3) {
      value = value * 10 + static_cast<unsigned>(text[pos] - '0');
      ++pos;
    }
    if (pos == start) return parse_error("ipv4: address is not a dotted quad");
    if (pos - start > 1 && text[start] == '0') return parse_error("ipv4: address octet has a leading zero");
    if (value > 255) return parse_error("ipv4: address octet is above 255");
    a.octets[i] = static_cast<std::uint8_t>(value);
  }
  if (pos != text.size()) return parse_error("ipv4: address is not a dotted quad");
  return a;
}

Ipv4Address Ipv4Address::read(ByteReader& r) {
  Ipv4Address a;
  read_octets(r, a.octets);
  return a;
}

void Ipv4Address::write(ByteWriter& w) const { write_octets(w, octets); }

std::string Ipv6Address::to_string() const {
  std::array<unsigned, 8> groups{};
  for (std::size_t i = 0; i < 8; ++i) groups[i] = (unsigned{octets[2 * i]} << 8) | octets[2 * i + 1];

  // The longest run of two or more zero groups (the first if tied) becomes "::".
  std::size_t best_start = 8, best_len = 0;
  for (std::size_t i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_len && j - i >= 2) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }

  std::string out;
  char buf[8];
  for (std::size_t i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof buf, "%x", groups[i]);
    out += buf;
  }
  return out;
}

Ipv6Address Ipv6Address::read(ByteReader& r) {
  Ipv6Address a;
  read_octets(r, a.octets);
  return a;
}

void Ipv6Address::write(ByteWriter& w) const { write_octets(w, octets); }

}  // namespace sandboxd::net::wire
