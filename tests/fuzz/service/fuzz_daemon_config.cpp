// The daemon config parser: any text either parses to settings within their
// documented ranges, or gives a short, printable error that names the line;
// and the same text parsed over its own result gives that result again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/service/auth_token.hpp"
#include "daemon/service/daemon_config.hpp"

using namespace sandboxd;
using namespace sandboxd::service;

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}

bool one_of(const std::string& v, std::initializer_list<std::string_view> choices) {
  for (auto c : choices)
    if (v == c) return true;
  return false;
}

void check_ranges(const DaemonConfig& c) {
  require(c.pool_size <= 64);
  require(c.default_cpus >= 1 && c.default_cpus <= c.max_cpus && c.max_cpus <= 64);
  require(c.default_memory_mib >= 64 && c.default_memory_mib <= c.max_memory_mib && c.max_memory_mib <= 65536);
  require(c.max_sandboxes_per_token >= 1 && c.max_sandboxes_per_token <= 10000);
  require(c.max_frame_bytes >= 1024 && c.max_frame_bytes <= (64u << 20));
  require(c.max_pending_requests >= 1 && c.max_pending_requests <= 10000);
  require(c.exec_log_bytes >= (64u << 10) && c.exec_log_bytes <= (1u << 30));
  require(c.max_retained_execs <= 1000000);
  for (unsigned d : {c.exec_retention_s, c.default_lifetime_s, c.default_idle_timeout_s}) require(d <= 8760u * 3600);
  require(one_of(c.accelerator, {"auto", "kvm", "tcg"}));
  require(one_of(c.network, {"stack", "slirp", "none"}));
  require(one_of(c.egress, {"deny-all", "allow-all"}));
  require(one_of(c.log_level, {"trace", "debug", "info", "warn", "error", "off"}));
  require(c.token.empty() || is_acceptable_token(c.token));
  require(c.socket_path.size() <= 107);
  require(c.runtime_dir.empty() || c.runtime_dir.is_absolute());
  require(c.token_file.empty() || c.token_file.is_absolute());
  for (const auto& o : c.allowed_origins) require(o == "*" || is_origin(o));
  require(!c.image.empty() && c.image.size() <= 64);
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
