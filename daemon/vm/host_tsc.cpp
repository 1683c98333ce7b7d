#include "daemon/vm/host_tsc.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

namespace sandboxd::vm {

std::optional<std::uint64_t> tsc_khz_from_cpuinfo(std::string_view cpuinfo) {
  std::size_t at = cpuinfo.find("cpu MHz");
  if (at == std::string_view::npos) return std::nullopt;
  std::size_t colon = cpuinfo.find(':', at);
  std::size_t eol = cpuinfo.find('\n', at);
  if (colon == std::string_view::npos || (eol != std::string_view::npos && colon > eol)) return std::nullopt;
  std::string_view value = cpuinfo.substr(colon + 1, eol == std::string_view::npos ? std::string_view::npos : eol - colon - 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  // "2596.130" -> 2596130 kHz, without floating point.
  std::uint64_t mhz = 0, frac = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), mhz);
  if (ec != std::errc{} || mhz == 0 || mhz > 100000) return std::nullopt;
  int digits = 0;
  if (p < value.data() + value.size() && *p == '.') {
    for (++p; p < value.data() + value.size() && *p >= '0' && *p <= '9' && digits < 3; ++p, ++digits) {
      frac = frac * 10 + static_cast<std::uint64_t>(*p - '0');
    }
  }
  for (; digits < 3; ++digits) frac *= 10;
  return mhz * 1000 + frac;
}

std::optional<std::uint64_t> host_tsc_khz() {
  std::ifstream in("/proc/cpuinfo");
  std::ostringstream text;
  text << in.rdbuf();
  return tsc_khz_from_cpuinfo(text.str());
}

}  // namespace sandboxd::vm
