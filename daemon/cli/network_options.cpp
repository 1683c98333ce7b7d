#include "daemon/cli/network_options.hpp"

namespace sandboxd::cli {

void add_network_options(CLI::App& command, NetworkOptions& options) {
  command.add_option("--mtu", options.mtu, "Guest link MTU (576-65520)")
      ->check(CLI::Range(576, 65520))
      ->capture_default_str();
  command.add_option("--egress", options.egress, "Where guest flows may go: allow-all or deny-all (network 'stack')")
      ->check(CLI::IsMember({"allow-all", "deny-all"}))
      ->capture_default_str();
  command.add_option("--host-alias", options.host_aliases,
                     "NAME=IP: NAME resolves in the guest and reaches IP on the host, loopback included (repeatable)")
      ->check([](const std::string& s) {
        auto alias = net::parse_host_alias(s);
        return alias ? std::string() : alias.error();
      });
  command.add_flag("--net-stats", options.print_stats, "Print the network counters to stderr at the end");
}

Expected<NetworkSetup, std::string> make_network_setup(const NetworkOptions& options) {
  auto mode = net::parse_egress_mode(options.egress);
  if (!mode) return Unexpected{mode.error()};
  std::vector<std::pair<std::string, net::wire::Ipv4Address>> aliases;
  for (const auto& text : options.host_aliases) {
    auto alias = net::parse_host_alias(text);
    if (!alias) return Unexpected{alias.error()};
    aliases.push_back(*alias);
  }
  net::StackConfig stack;
  stack.mtu = static_cast<std::uint16_t>(options.mtu);
  auto policy = net::EgressPolicy::make(*mode, aliases, net::wire::Ipv4Address{{10, 0, 2, 100}},
                                        net::host_interface_addresses());
  if (!policy) return Unexpected{policy.error()};
  return NetworkSetup{stack, std::move(*policy)};
}

}  // namespace sandboxd::cli
