#include "daemon/config/setting_table.hpp"

#include <limits>
#include <stdexcept>
#include <type_traits>

#include "daemon/config/setting_values.hpp"

namespace sandboxd::config {

namespace {

// Where a setting lives in a DaemonConfig: one of its parts (config.pool)
// and a member of that part (warm_per_shape).
template <class Part, class T>
struct Member {
  Part DaemonConfig::*part;
  T Part::*field;
  T& of(DaemonConfig& c) const { return c.*part.*field; }
  const T& of(const DaemonConfig& c) const { return c.*part.*field; }
};

template <class Part, class T>
Member<Part, T> member(Part DaemonConfig::*part, T Part::*field) {
  return {part, field};
}

// Where a setting appears besides the config file.
struct Reach {
  std::string_view flag;
  bool flag_repeats = false;
  bool in_hello = false;
};

// An entry: `kind` parses into a V, which the member (a T) holds. Integers
// are parsed as 64-bit values and kept in the member's own type; a kind whose
// range does not fit the member is a mistake in the table, found by the
// first value beyond it.
template <class Part, class T, class V>
Setting setting(std::string_view key, Member<Part, T> where, ValueKind<V> kind, std::string_view doc,
                Reach reach = {}) {
  static_assert(std::is_integral_v<T> == std::is_integral_v<V>, "an integer kind for an integer member only");
  if (reach.in_hello && !std::is_integral_v<T>)
    throw std::logic_error(std::string(key) + ": only numbers go in the hello");
  Setting s;
  s.key = key;
  s.doc = doc;
  s.accepts = kind.accepts;
  s.flag = reach.flag;
  s.flag_repeats = reach.flag_repeats;
  s.in_hello = reach.in_hello;
  s.set = [where, parse = kind.parse](DaemonConfig& c, std::string_view text) -> Expected<void, std::string> {
    auto value = parse(text);
    if (!value) return Unexpected{value.error()};
    if constexpr (std::is_integral_v<T>) {
      if (*value > std::numeric_limits<T>::max()) throw std::logic_error("a range wider than its member");
    }
    where.of(c) = static_cast<T>(std::move(*value));
    return {};
  };
  s.show = [where, show = kind.show](const DaemonConfig& c) { return show(static_cast<V>(where.of(c))); };
  if constexpr (std::is_integral_v<T>) {
    s.number = [where](const DaemonConfig& c) -> std::optional<std::uint64_t> { return where.of(c); };
  } else {
    s.number = [](const DaemonConfig&) -> std::optional<std::uint64_t> { return std::nullopt; };
  }
  return s;
}

std::vector<Setting> make_table() {
  using api::ConnectionConfig;
  using session::ServiceConfig;
  using vm::MachineConfig;
  using vm::PoolConfig;
  constexpr Reach kHello{.in_hello = true};
  return {
      setting("listen", member(&DaemonConfig::listen, &ListenConfig::address), listen_address(),
              "TCP address of the control plane; port 0 takes any free port; empty disables TCP", {.flag = "--listen"}),
      setting("socket_path", member(&DaemonConfig::listen, &ListenConfig::socket_path), socket_path(),
              "the control plane's unix socket; empty: api.sock in the runtime dir; none disables it",
              {.flag = "--socket"}),
      setting("runtime_dir", member(&DaemonConfig::runtime, &RuntimeConfig::dir), absolute_path(),
              "where the daemon records what each sandbox holds; empty: /run/sandboxd as root, else "
              "$XDG_RUNTIME_DIR/sandboxd or /tmp/sandboxd-<uid>",
              {.flag = "--runtime-dir"}),
      setting("token_file", member(&DaemonConfig::access, &AccessConfig::token_file), absolute_path(),
              "the file holding the bearer token, created 0600 with a random one when missing; empty: token in the "
              "state dir, /var/lib/sandboxd as root, else $XDG_STATE_HOME/sandboxd or ~/.local/state/sandboxd",
              {.flag = "--token-file"}),
      setting("image_store", member(&DaemonConfig::runtime, &RuntimeConfig::image_store), absolute_path(),
              "where the images sandbox.checkpoint makes are kept (searched after the other image roots); empty: "
              "images in the state dir, /var/lib/sandboxd/images as root",
              {.flag = "--image-store"}),
      setting("disk_dir", member(&DaemonConfig::runtime, &RuntimeConfig::disk_dir), absolute_path(),
              "where writable layers in files are made (nameless sparse files: their space comes back when the "
              "sandbox ends, even after a crash); not a tmpfs; empty: disks in the state dir, /var/lib/sandboxd/disks "
              "as root",
              {.flag = "--disk-dir"}),
      setting("token", member(&DaemonConfig::access, &AccessConfig::token), token(),
              "the token itself, used instead of token_file; a config file holding one must be readable by its "
              "owner only"),
      setting("allowed_origins", member(&DaemonConfig::access, &AccessConfig::allowed_origins), origins(),
              "browser origins that may connect; * allows any; empty allows none",
              {.flag = "--allow-origin", .flag_repeats = true}),
      setting("image", member(&DaemonConfig::service, &ServiceConfig::default_image), image_name(),
              "guest image of sandboxes that do not name one", {.flag = "--image"}),
      setting("pool_size", member(&DaemonConfig::pool, &PoolConfig::warm_per_shape), integer(0, 64),
              "warm VMs kept per image and shape", {.flag = "--pool-size"}),
      setting("default_cpus", member(&DaemonConfig::service, &ServiceConfig::default_cpus), integer(1, 64),
              "vCPUs of a sandbox that does not ask; at most max_cpus"),
      setting("default_memory_mib", member(&DaemonConfig::service, &ServiceConfig::default_memory_mib),
              integer(64, 65536), "memory (MiB) of a sandbox that does not ask; at most max_memory_mib"),
      setting("max_cpus", member(&DaemonConfig::service, &ServiceConfig::max_cpus), integer(1, 64),
              "the most vCPUs a sandbox may ask for", kHello),
      setting("max_memory_mib", member(&DaemonConfig::service, &ServiceConfig::max_memory_mib), integer(64, 65536),
              "the most memory (MiB) a sandbox may ask for", kHello),
      setting("default_file_disk_mib", member(&DaemonConfig::service, &ServiceConfig::default_file_disk_mib),
              integer(16, 1 << 20), "the size (MiB) of a writable layer in a file when the create gives no disk_mib; "
              "at most max_disk_mib"),
      setting("max_disk_mib", member(&DaemonConfig::service, &ServiceConfig::max_disk_mib), integer(16, 1 << 20),
              "the largest writable layer in a file (disk_backing \"file\", MiB) a sandbox may ask for", kHello),
      setting("max_sandboxes_per_token", member(&DaemonConfig::service, &ServiceConfig::max_sandboxes_per_token),
              integer(1, 10000), "sandboxes one token may hold at once", kHello),
      setting("max_frame_bytes", member(&DaemonConfig::connection, &ConnectionConfig::max_frame_bytes),
              size(kKiB, 64 * kMiB), "the largest control-plane message a client may send", kHello),
      setting("max_pending_requests", member(&DaemonConfig::connection, &ConnectionConfig::max_pending_requests),
              integer(1, 10000), "requests one connection may have in flight", kHello),
      setting("exec_log_bytes", member(&DaemonConfig::service, &ServiceConfig::exec_log_bytes), size(64 * kKiB, kGiB),
              "output kept per exec; a process that outruns its reader is paused, never loses output"),
      setting("exec_retention_s", member(&DaemonConfig::service, &ServiceConfig::exec_retention_s), duration(),
              "how long a finished exec stays readable"),
      setting("max_retained_execs", member(&DaemonConfig::service, &ServiceConfig::max_retained_execs),
              integer(0, 1000000), "finished execs kept readable at once, per token"),
      setting("default_lifetime_s", member(&DaemonConfig::service, &ServiceConfig::default_lifetime_s), duration(),
              "a sandbox's lifetime unless it asks; 0: none"),
      setting("default_idle_timeout_s", member(&DaemonConfig::service, &ServiceConfig::default_idle_timeout_s),
              duration(), "idle time after which a sandbox is removed unless it asks; 0: none"),
      setting("allowed_host_roots", member(&DaemonConfig::service, &ServiceConfig::allowed_host_roots),
              absolute_paths(),
              "host directories a sandbox's host mounts may serve, each with everything beneath it; empty: none",
              {.flag = "--allow-host-root", .flag_repeats = true}),
      setting("accelerator", member(&DaemonConfig::machine, &MachineConfig::accelerator),
              choice(vm::kAcceleratorRequestNames),
              "how QEMU runs guests; auto: KVM once a guest has been seen to boot with it on this host, else TCG",
              {.flag = "--accel"}),
      setting("network", member(&DaemonConfig::machine, &MachineConfig::network), choice(vm::kNetworkModeNames),
              "the guest's network: the daemon's own stack, QEMU's user network (slirp) or no NIC at all",
              {.flag = "--network"}),
      setting("egress", member(&DaemonConfig::service, &ServiceConfig::default_egress), choice(net::kEgressModeNames),
              "where a sandbox's network flows may go unless it asks (when network_policy is not set)",
              {.flag = "--egress"}),
      setting("network_policy", member(&DaemonConfig::network, &NetworkSettings::policy_file), absolute_path(),
              "a network policy file (JSON rules, WS_PROTOCOL.md \"Network policy\"): every sandbox's rules unless "
              "it asks; read at start; empty: the egress mode",
              {.flag = "--policy"}),
      setting("host_aliases", member(&DaemonConfig::network, &NetworkSettings::host_aliases), host_aliases(),
              "NAME=IP: NAME resolves in every guest and reaches IP on the host, loopback included, when a rule "
              "allows NAME",
              {.flag = "--host-alias", .flag_repeats = true}),
      setting("log_level", member(&DaemonConfig::log, &LoggingConfig::level), choice(kLogLevelNames),
              "the least severe log lines the daemon writes", {.flag = "--log-level"}),
  };
}

}  // namespace

const std::vector<Setting>& setting_table() {
  static const std::vector<Setting> table = make_table();
  return table;
}

const Setting* find_setting(std::string_view key) {
  for (const auto& s : setting_table())
    if (s.key == key) return &s;
  return nullptr;
}

}  // namespace sandboxd::config
