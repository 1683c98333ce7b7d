// The daemon config parser: any text either parses to settings within their
// documented ranges, or gives a short, printable error that names the line;
// and the same text parsed over its own result gives that result again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/config/config_file.hpp"
#include "daemon/service/auth_token.hpp"

using namespace sandboxd;
using namespace sandboxd::config;

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}

template <class E, std::size_t N>
bool named(const EnumNames<E, N>& names, const E& value) {
  return names.name(value) != "?";
}

void check_ranges(const DaemonConfig& c) {
  const session::ServiceConfig& s = c.service;
  require(c.pool.warm_per_shape <= 64);
  require(s.default_cpus >= 1 && s.default_cpus <= s.max_cpus && s.max_cpus <= 64);
  require(s.default_memory_mib >= 64 && s.default_memory_mib <= s.max_memory_mib && s.max_memory_mib <= 65536);
  require(s.max_sandboxes_per_token >= 1 && s.max_sandboxes_per_token <= 10000);
  require(c.connection.max_frame_bytes >= 1024 && c.connection.max_frame_bytes <= (64u << 20));
  require(c.connection.max_pending_requests >= 1 && c.connection.max_pending_requests <= 10000);
  require(s.exec_log_bytes >= (64u << 10) && s.exec_log_bytes <= (1u << 30));
  require(s.max_retained_execs <= 1000000);
  for (std::uint32_t d : {s.exec_retention_s, s.default_lifetime_s, s.default_idle_timeout_s})
    require(d <= 8760u * 3600);
  require(named(vm::kAcceleratorRequestNames, c.machine.accelerator));
  require(named(vm::kNetworkModeNames, c.machine.network));
  require(named(net::kEgressModeNames, s.default_egress));
  require(named(kLogLevelNames, c.log.level));
  require(c.access.token.empty() || service::is_acceptable_token(c.access.token));
  require(c.listen.socket_path.size() <= 107);
  require(c.runtime.dir.empty() || c.runtime.dir.is_absolute());
  require(c.access.token_file.empty() || c.access.token_file.is_absolute());
  for (const auto& o : c.access.allowed_origins) require(o == "*" || service::is_origin(o));
  require(!s.default_image.empty() && s.default_image.size() <= 64);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = parse_daemon_config(text);
  if (!c) {
    const std::string& e = c.error();
    require(!e.empty());
    require(e.rfind("line ", 0) == 0);
    // Errors are for logs and terminals: printable, and short whatever the input.
    for (char ch : e) require(static_cast<unsigned char>(ch) >= 0x20 && static_cast<unsigned char>(ch) < 0x7f);
    require(e.size() < 512);
    return 0;
  }
  check_ranges(*c);
  // The same settings over the result give the result again.
  auto again = parse_daemon_config(text, *c);
  require(again.has_value());
  require(*again == *c);
  return 0;
}
