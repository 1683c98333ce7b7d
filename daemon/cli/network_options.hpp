// The command-line options that shape a sandbox's network, shared by `run`
// and `net-serve`, and their translation into the stack's configuration and
// the egress policy. Every value is checked here, with a message that names
// the option, before anything starts.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/stack/stack_config.hpp"
#include "policy/network_policy.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::cli {

struct NetworkOptions {
  unsigned mtu = 1500;
  std::string egress;       // empty: deny-all, unless --policy
  std::string policy_file;  // --policy: rules in place of --egress
  std::vector<std::string> host_aliases;  // NAME=IP
  bool print_stats = false;
};

// Adds --mtu, --egress, --policy, --host-alias and --net-stats to `command`.
void add_network_options(CLI::App& command, NetworkOptions& options);

struct NetworkSetup {
  net::StackConfig stack;
  net::EgressPolicy policy;
};

Expected<NetworkSetup, std::string> make_network_setup(const NetworkOptions& options);

// A network policy document (policy/policy_json.hpp) read from `path`; the
// error names the file and where in it the document is wrong.
Expected<policy::NetworkPolicy, std::string> load_policy_file(const std::string& path);

}  // namespace sandboxd::cli
