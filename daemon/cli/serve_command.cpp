#include "daemon/cli/serve_command.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <iostream>

#include <spdlog/spdlog.h>

#include "daemon/api/wire_format.hpp"
#include "daemon/api/ws_server.hpp"
#include "daemon/cli/network_options.hpp"
#include "daemon/cli/run_command.hpp"
#include "daemon/service/auth_token.hpp"
#include "daemon/service/daemon_config.hpp"
#include "daemon/service/blocking_work.hpp"
#include "daemon/service/runtime_dir.hpp"
#include "daemon/service/runtime_records.hpp"
#include "daemon/session/sandbox_service.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/host_tsc.hpp"
#include "daemon/vm/launcher.hpp"
#include "daemon/vm/network_mode.hpp"
#include "daemon/vm/qemu_machine_factory.hpp"
#include "daemon/vm/vm_pool.hpp"

namespace sandboxd::cli {
namespace asio = boost::asio;

void add_serve_options(CLI::App& cmd, ServeOptions& o) {
  cmd.add_option("-c,--config", o.config_file, "Config file (key = value lines; see the README)");
  cmd.add_option("--listen", o.listen, "TCP address host:port (port 0: any free port; empty: no TCP)");
  cmd.add_option("--socket", o.socket_path, "Unix socket path (none: no unix socket)");
  cmd.add_option("--runtime-dir", o.runtime_dir, "Where the daemon records what each sandbox holds");
  cmd.add_option("--token-file", o.token_file, "File holding the bearer token (created 0600 when missing)");
  cmd.add_option("--extra-tokens-file", o.extra_tokens_file,
                 "File with further tokens, one per line, each owning its own sandboxes");
  cmd.add_option("--pool-size", o.pool_size, "Warm VMs per image and shape")->check(CLI::Range(0, 64));
  cmd.add_option("--network", o.network, "Guest network: stack, slirp or none")
      ->check(CLI::IsMember({"stack", "slirp", "none"}));
  cmd.add_option("--egress", o.egress, "Default egress: deny-all or allow-all")
      ->check(CLI::IsMember({"deny-all", "allow-all"}));
  cmd.add_option("--accel", o.accelerator, "Accelerator: auto, kvm or tcg")->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  cmd.add_option("--image", o.image, "Default guest image");
  cmd.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off");
  cmd.add_option("--allow-origin", o.allowed_origins, "Browser origin allowed to connect (repeatable)");
}

namespace {

Expected<std::vector<std::string>, std::string> read_extra_tokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Unexpected{"cannot read " + path};
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    if (!service::is_acceptable_token(line)) return Unexpected{path + ": a token is 16..1024 printable characters"};
    tokens.push_back(line);
  }
  return tokens;
}

std::string socket_path_of(const service::DaemonConfig& config, const service::RuntimeDir& runtime) {
  if (config.socket_path == "none") return "";
  if (!config.socket_path.empty()) return config.socket_path;
  return (runtime.root() / "api.sock").string();
}

}  // namespace

int serve_command(const ServeOptions& options) {
  service::DaemonConfig config;
  if (!options.config_file.empty()) {
    auto loaded = service::load_daemon_config(options.config_file);
    if (!loaded) {
      std::cerr << "sandboxd-host: " << options.config_file << ": " << loaded.error() << "\n";
      return kSandboxFailure;
    }
    config = *loaded;
  }
  if (options.listen) config.listen = *options.listen;
  if (options.socket_path) config.socket_path = *options.socket_path;
  if (options.runtime_dir) config.runtime_dir = *options.runtime_dir;
  if (options.token_file) config.token_file = *options.token_file;
  if (options.pool_size) config.pool_size = *options.pool_size;
  if (options.network) config.network = *options.network;
  if (options.egress) config.egress = *options.egress;
  if (options.accelerator) config.accelerator = *options.accelerator;
  if (options.image) config.image = *options.image;
  if (options.log_level) config.log_level = *options.log_level;
  if (!options.allowed_origins.empty()) config.allowed_origins = options.allowed_origins;
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  // Who may connect.
  std::vector<std::string> tokens;
  if (!config.token.empty()) {
    tokens.push_back(config.token);
  } else {
    auto file = config.token_file.empty() ? service::default_token_file() : config.token_file;
    bool created = false;
    auto token = service::load_or_create_token(file, &created);
    if (!token) {
      std::cerr << "sandboxd-host: token: " << token.error() << "\n";
      return kSandboxFailure;
    }
    if (created) spdlog::warn("created a new token in {} (clients read it from there)", file.string());
    tokens.push_back(*token);
  }
  if (options.extra_tokens_file) {
    auto extra = read_extra_tokens(*options.extra_tokens_file);
    if (!extra) {
      std::cerr << "sandboxd-host: " << extra.error() << "\n";
      return kSandboxFailure;
    }
    tokens.insert(tokens.end(), extra->begin(), extra->end());
  }

  // What a previous run left behind goes first: nothing of it may survive.
  auto runtime = service::RuntimeDir::open(config.runtime_dir.empty() ? service::default_runtime_dir() : config.runtime_dir);
  if (!runtime) {
    std::cerr << "sandboxd-host: runtime dir: " << runtime.error() << "\n";
    return kSandboxFailure;
  }
  auto report = (*runtime)->reconcile();
  std::cerr << "sandboxd-host: reconciled " << (*runtime)->root().string() << ": " << report.summary() << "\n";

  auto accel = vm::parse_accelerator_request(config.accelerator);
  auto network = vm::kNetworkModeNames.parse(config.network);
  std::string qemu = vm::find_program("qemu-system-x86_64");
  if (!accel || !network) {
    std::cerr << "sandboxd-host: bad accelerator or network setting\n";
    return kSandboxFailure;
  }
  if (qemu.empty()) {
    std::cerr << "sandboxd-host: qemu-system-x86_64 not found in PATH (apt-get install qemu-system-x86)\n";
    return kSandboxFailure;
  }
  if (auto image = vm::find_guest_image(config.image, vm::default_image_roots()); !image) {
    std::cerr << "sandboxd-host: " << image.error() << "\n";
    return kSandboxFailure;
  }
  NetworkOptions net_options;
  auto net_setup = make_network_setup(net_options);
  if (!net_setup) {
    std::cerr << "sandboxd-host: " << net_setup.error() << "\n";
    return kSandboxFailure;
  }
  if (auto mac = net::wire::MacAddress::parse(vm::kDefaultGuestMac)) net_setup->stack.guest_mac = *mac;
  ::signal(SIGPIPE, SIG_IGN);

  asio::io_context io;
  service::BlockingWork blocking(io.get_executor());
  auto records = std::make_shared<service::RuntimeRecords>(**runtime, blocking);
  vm::VmLauncher launcher(io, {*accel, vm::default_cache_dir()}, blocking);
  auto make_policy = [](net::EgressMode mode) -> Expected<net::EgressPolicy, std::string> {
    return net::EgressPolicy::make(mode, {}, net::wire::Ipv4Address{{10, 0, 2, 100}}, net::host_interface_addresses());
  };
  auto waiting_policy = make_policy(net::EgressMode::kDenyAll);
  if (!waiting_policy) {
    std::cerr << "sandboxd-host: egress policy: " << waiting_policy.error() << "\n";
    return kSandboxFailure;
  }
  vm::QemuMachineSettings machine_settings;
  machine_settings.qemu_binary = qemu;
  machine_settings.image_roots = vm::default_image_roots();
  machine_settings.tsc_khz = vm::host_tsc_khz();
  machine_settings.network = *network;
  machine_settings.stack = net_setup->stack;
  // Pooled machines deny all egress until a sandbox gives them its policy.
  machine_settings.waiting_policy = std::move(*waiting_policy);
  vm::QemuMachineFactory factory(io, launcher, machine_settings, records);
  vm::VmPool pool(io, factory, {config.pool_size, 2});

  session::ServiceConfig service_config;
  service_config.default_image = config.image;
  service_config.default_cpus = config.default_cpus;
  service_config.default_memory_mib = config.default_memory_mib;
  service_config.max_cpus = config.max_cpus;
  service_config.max_memory_mib = config.max_memory_mib;
  service_config.max_sandboxes_per_token = config.max_sandboxes_per_token;
  service_config.default_lifetime_s = config.default_lifetime_s;
  service_config.default_idle_timeout_s = config.default_idle_timeout_s;
  service_config.default_egress = *net::kEgressModeNames.parse(config.egress);
  service_config.exec_log_bytes = config.exec_log_bytes;
  service_config.exec_retention_s = config.exec_retention_s;
  service_config.max_retained_execs = config.max_retained_execs;
  api::WsLogFormat log_format;
  session::SandboxService service(io, pool, service_config, log_format, make_policy);

  api::ServerSettings server_settings;
  server_settings.tokens = tokens;
  server_settings.allowed_origins = config.allowed_origins;
  server_settings.connection.max_frame_bytes = config.max_frame_bytes;
  server_settings.connection.max_pending_requests = config.max_pending_requests;
  server_settings.hello.server_name = std::string("sandboxd-host ") + SANDBOXD_VERSION;
  server_settings.hello.limits = {{"max_frame_bytes", config.max_frame_bytes},
                                  {"max_pending_requests", config.max_pending_requests},
                                  {"max_sandboxes", config.max_sandboxes_per_token},
                                  {"max_cpus", config.max_cpus},
                                  {"max_memory_mib", config.max_memory_mib}};
  api::WsServer server(io, service, server_settings);
  // Where clients reach the daemon, as the documented lines on stderr and in
  // <runtime_dir>/endpoints.json (README, "Where the daemon listens").
  boost::json::object endpoints{{"pid", ::getpid()}, {"url", nullptr}, {"tcp", nullptr}, {"unix", nullptr}};
  if (!config.listen.empty()) {
    auto endpoint = server.listen_tcp(config.listen);
    if (!endpoint) {
      std::cerr << "sandboxd-host: " << endpoint.error() << "\n";
      return kSandboxFailure;
    }
    std::string host = endpoint->address().to_string();
    if (endpoint->address().is_v6()) host = "[" + host + "]";
    std::string address = host + ":" + std::to_string(endpoint->port());
    endpoints["tcp"] = address;
    endpoints["url"] = "ws://" + address + "/v1";
    std::cerr << "sandboxd-host: listening on ws://" << address << "/v1\n";
  }
  if (auto path = socket_path_of(config, **runtime); !path.empty()) {
    if (auto ok = server.listen_unix(path); !ok) {
      std::cerr << "sandboxd-host: " << ok.error() << "\n";
      return kSandboxFailure;
    }
    endpoints["unix"] = path;
    std::cerr << "sandboxd-host: listening on unix:" << path << "\n";
  }
  if (auto published = (*runtime)->publish_endpoints(boost::json::serialize(endpoints) + "\n"); !published) {
    std::cerr << "sandboxd-host: " << published.error() << "\n";
    return kSandboxFailure;
  }
  pool.keep_warm({config.image, config.default_cpus, config.default_memory_mib});

  bool stopping = false;
  asio::signal_set signals(io, SIGTERM, SIGINT);
  asio::steady_timer stop_deadline(io);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    stopping = true;
    spdlog::warn("signal {}: stopping; {} sandboxes end", signo, service.sandbox_count());
    server.stop_accepting();
    service.shutdown([&] {
      spdlog::info("every sandbox has ended");
      server.close_all();
      // Let the close frames and final events reach the clients.
      stop_deadline.expires_after(std::chrono::milliseconds(200));
      stop_deadline.async_wait([&](const boost::system::error_code&) { io.stop(); });
    });
  });
  std::cerr << "sandboxd-host: ready (pool of " << config.pool_size << " per shape, network " << config.network
            << ", egress " << config.egress << ")\n";
  io.run();
  std::cerr << "sandboxd-host: stopped" << (stopping ? "" : " unexpectedly") << "\n";
  return 0;
}

}  // namespace sandboxd::cli
