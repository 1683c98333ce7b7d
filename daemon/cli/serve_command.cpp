#include "daemon/cli/serve_command.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <fstream>
#include <iostream>

#include <spdlog/spdlog.h>

#include "daemon/api/wire_format.hpp"
#include "daemon/api/ws_server.hpp"
#include "daemon/cli/network_options.hpp"
#include "daemon/cli/run_command.hpp"
#include "daemon/config/config_file.hpp"
#include "daemon/config/hello_limits.hpp"
#include "daemon/service/auth_token.hpp"
#include "daemon/service/blocking_work.hpp"
#include "daemon/service/runtime_dir.hpp"
#include "daemon/service/runtime_records.hpp"
#include "daemon/session/sandbox_service.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/host_tsc.hpp"
#include "daemon/vm/image_store.hpp"
#include "daemon/vm/launcher.hpp"
#include "daemon/vm/network_mode.hpp"
#include "daemon/vm/qemu_machine_factory.hpp"
#include "daemon/vm/vm_pool.hpp"

namespace sandboxd::cli {
namespace asio = boost::asio;

void add_serve_options(CLI::App& cmd, ServeOptions& o) {
  cmd.add_option("-c,--config", o.config_file, "Config file (key = value lines; see daemon/config/README.md)");
  cmd.add_option("--extra-tokens-file", o.extra_tokens_file,
                 "File with further tokens, one per line, each owning its own sandboxes");
  config::add_setting_flags(cmd, o.settings);
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

std::string socket_path_of(const config::ListenConfig& listen, const service::RuntimeDir& runtime) {
  if (listen.socket_path == "none") return "";
  if (!listen.socket_path.empty()) return listen.socket_path;
  return (runtime.root() / "api.sock").string();
}

// How long a stopping daemon waits for its clients to answer their close.
constexpr std::chrono::seconds kCloseDeadline{2};

}  // namespace

int serve_command(const ServeOptions& options) {
  config::DaemonConfig config;
  if (!options.config_file.empty()) {
    auto loaded = config::load_daemon_config(options.config_file);
    if (!loaded) {
      std::cerr << "sandboxd-host: " << loaded.error() << "\n";
      return kSandboxFailure;
    }
    config = *loaded;
  }
  if (auto flags = config::apply_setting_flags(options.settings, config); !flags) {
    std::cerr << "sandboxd-host: " << flags.error() << "\n";
    return kSandboxFailure;
  }
  spdlog::set_level(config.log.level);

  // Who may connect.
  std::vector<std::string> tokens;
  if (!config.access.token.empty()) {
    tokens.push_back(config.access.token);
  } else {
    auto file = config.access.token_file.empty() ? service::default_token_file() : config.access.token_file;
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
  auto runtime =
      service::RuntimeDir::open(config.runtime.dir.empty() ? service::default_runtime_dir() : config.runtime.dir);
  if (!runtime) {
    std::cerr << "sandboxd-host: runtime dir: " << runtime.error() << "\n";
    return kSandboxFailure;
  }
  auto report = (*runtime)->reconcile();
  std::cerr << "sandboxd-host: reconciled " << (*runtime)->root().string() << ": " << report.summary() << "\n";

  std::string qemu = vm::find_program("qemu-system-x86_64");
  if (qemu.empty()) {
    std::cerr << "sandboxd-host: qemu-system-x86_64 not found in PATH (apt-get install qemu-system-x86)\n";
    return kSandboxFailure;
  }
  if (auto image = vm::find_guest_image(config.service.default_image, vm::default_image_roots()); !image) {
    std::cerr << "sandboxd-host: " << image.error() << "\n";
    return kSandboxFailure;
  } else if (auto digests = vm::verify_layer_digests(image->layers); !digests) {
    // Read once here, before the event loop runs: a layer file changed since
    // the image was built is refused at start-up rather than booted.
    std::cerr << "sandboxd-host: guest image '" << image->name << "': " << digests.error() << "\n";
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

  // Checkpoint images: found after every other root, so that they can never
  // shadow a built image.
  std::filesystem::path store_root = config.runtime.image_store;
  if (store_root.empty()) store_root = service::default_image_store();
  auto image_roots = vm::default_image_roots();
  if (!store_root.empty() && std::find(image_roots.begin(), image_roots.end(), store_root) == image_roots.end())
    image_roots.push_back(store_root);
  // Before the worker, which may still use it while it stops.
  vm::ImageStore image_store(store_root);

  asio::io_context io;
  service::BlockingWork blocking(io.get_executor());
  auto records = std::make_shared<service::RuntimeRecords>(**runtime, blocking);
  vm::VmLauncher launcher(io, {config.machine.accelerator, vm::default_cache_dir()}, blocking);
  net::AliasList aliases;
  for (const auto& text : config.network.host_aliases) {
    auto alias = net::parse_host_alias(text);
    if (!alias) {
      std::cerr << "sandboxd-host: host_aliases: " << alias.error() << "\n";
      return kSandboxFailure;
    }
    aliases.push_back(*alias);
  }
  if (!config.network.policy_file.empty()) {
    auto rules = load_policy_file(config.network.policy_file.string());
    if (!rules) {
      std::cerr << "sandboxd-host: " << rules.error() << "\n";
      return kSandboxFailure;
    }
    config.service.default_network = std::move(*rules);
  }
  auto make_policy = [aliases, host_addresses = net::host_interface_addresses()](
                         const session::NetworkChoice& choice) -> Expected<net::EgressPolicy, std::string> {
    return net::EgressPolicy::make(choice.mode ? net::policy_for_mode(*choice.mode, aliases) : choice.rules, aliases,
                                   net::wire::Ipv4Address{{10, 0, 2, 100}}, host_addresses);
  };
  auto waiting_policy = make_policy(session::NetworkChoice{net::EgressMode::kDenyAll, {}});
  if (!waiting_policy) {
    std::cerr << "sandboxd-host: egress policy: " << waiting_policy.error() << "\n";
    return kSandboxFailure;
  }
  vm::QemuMachineSettings machine_settings;
  machine_settings.qemu_binary = qemu;
  machine_settings.image_roots = image_roots;
  machine_settings.tsc_khz = vm::host_tsc_khz();
  machine_settings.network = config.machine.network;
  machine_settings.stack = net_setup->stack;
  // Pooled machines deny all egress until a sandbox gives them its policy.
  machine_settings.waiting_policy = std::move(*waiting_policy);
  machine_settings.disk_dir = config.runtime.disk_dir.empty() ? service::default_disk_dir() : config.runtime.disk_dir;
  vm::QemuMachineFactory factory(io, launcher, machine_settings, records);
  vm::VmPool pool(io, factory, config.pool);

  api::WsLogFormat log_format;
  session::SandboxService service(io, pool, config.service, log_format, make_policy);
  if (!store_root.empty()) service.enable_checkpoints({&image_store, &blocking, image_roots});

  api::ServerSettings server_settings;
  server_settings.tokens = tokens;
  server_settings.allowed_origins = config.access.allowed_origins;
  server_settings.connection = config.connection;
  server_settings.hello.server_name = std::string("sandboxd-host ") + SANDBOXD_VERSION;
  server_settings.hello.limits = config::hello_limits(config);
  api::WsServer server(io, service, server_settings);
  // Where clients reach the daemon, as the documented lines on stderr and in
  // <runtime_dir>/endpoints.json (README, "Where the daemon listens").
  boost::json::object endpoints{{"pid", ::getpid()}, {"url", nullptr}, {"tcp", nullptr}, {"unix", nullptr}};
  if (!config.listen.address.empty()) {
    auto endpoint = server.listen_tcp(config.listen.address);
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
  if (auto path = socket_path_of(config.listen, **runtime); !path.empty()) {
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
  pool.keep_warm({config.service.default_image, config.service.default_cpus, config.service.default_memory_mib});

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
      // The last events and the close frames go out; a client that does not
      // answer its close within the deadline is not waited for.
      stop_deadline.expires_after(kCloseDeadline);
      stop_deadline.async_wait([&](const boost::system::error_code& timer) {
        if (!timer) io.stop();
      });
      server.close_all([&] { io.stop(); });
    });
  });
  std::cerr << "sandboxd-host: ready (pool of " << config.pool.warm_per_shape << " per shape, network "
            << vm::to_string(config.machine.network) << ", egress "
            << (config.service.default_network
                    ? std::to_string(config.service.default_network->rules.size()) + " rules from " +
                          config.network.policy_file.string()
                    : std::string(net::to_string(config.service.default_egress)))
            << ")\n";
  io.run();
  std::cerr << "sandboxd-host: stopped" << (stopping ? "" : " unexpectedly") << "\n";
  return 0;
}

}  // namespace sandboxd::cli
