#include "daemon/cli/network_options.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "policy/policy_json.hpp"

namespace sandboxd::cli {

void add_network_options(CLI::App& command, NetworkOptions& options) {
  command.add_option("--mtu", options.mtu, "Guest link MTU (576-65520)")
      ->check(CLI::Range(576, 65520))
      ->capture_default_str();
  auto* egress =
      command.add_option("--egress", options.egress, "Where guest flows may go: allow-all or deny-all (default)")
          ->check(CLI::IsMember({"allow-all", "deny-all"}));
  command.add_option("--policy", options.policy_file, "A network policy file (JSON rules, WS_PROTOCOL.md) instead of --egress")
      ->check(CLI::ExistingFile)
      ->excludes(egress);
  command.add_option("--host-alias", options.host_aliases,
                     "NAME=IP: NAME resolves in the guest and reaches IP on the host, loopback included (repeatable)")
      ->check([](const std::string& s) {
        auto alias = net::parse_host_alias(s);
        return alias ? std::string() : alias.error();
      });
  command.add_flag("--net-stats", options.print_stats, "Print the network counters to stderr at the end");
}

Expected<NetworkSetup, std::string> make_network_setup(const NetworkOptions& options) {
  net::AliasList aliases;
  for (const auto& text : options.host_aliases) {
    auto alias = net::parse_host_alias(text);
    if (!alias) return Unexpected{alias.error()};
    aliases.push_back(*alias);
  }
  net::StackConfig stack;
  stack.mtu = static_cast<std::uint16_t>(options.mtu);
  policy::NetworkPolicy rules;
  if (!options.policy_file.empty()) {
    auto loaded = load_policy_file(options.policy_file);
    if (!loaded) return Unexpected{loaded.error()};
    rules = std::move(*loaded);
  } else {
    auto mode = net::parse_egress_mode(options.egress.empty() ? "deny-all" : options.egress);
    if (!mode) return Unexpected{mode.error()};
    rules = net::policy_for_mode(*mode, aliases);
  }
  auto policy = net::EgressPolicy::make(std::move(rules), aliases, net::wire::Ipv4Address{{10, 0, 2, 100}},
                                        net::host_interface_addresses());
  if (!policy) return Unexpected{policy.error()};
  return NetworkSetup{stack, std::move(*policy)};
}

Expected<policy::NetworkPolicy, std::string> load_policy_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unexpected{"cannot read network policy " + path + ": " + std::strerror(errno)};
  std::string text;
  char chunk[16384];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
    if (text.size() > policy::kMaxDocumentBytes)
      return Unexpected{"network policy " + path + " is larger than " + std::to_string(policy::kMaxDocumentBytes) +
                        " bytes"};
  }
  auto parsed = policy::parse_policy(as_bytes(text));
  if (!parsed) return Unexpected{"network policy " + path + ": " + parsed.error().to_string()};
  return std::move(*parsed);
}

}  // namespace sandboxd::cli
