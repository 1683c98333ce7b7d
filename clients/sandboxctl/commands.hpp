// The request-and-answer subcommands: create, ls and rm. exec, shell and
// attach stream an exec and live in exec_session.hpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "clients/sandboxctl/connection_target.hpp"

namespace sandboxd::ctl {

struct CreateOptions {
  std::optional<std::string> image;
  std::optional<unsigned> cpus;
  std::optional<unsigned> memory_mib;
  std::optional<unsigned> disk_mib;
  std::optional<std::string> disk_backing;  // "memory" or "file"
  std::vector<std::string> labels;  // K=V
  std::vector<std::string> env;     // K=V
  std::optional<std::uint32_t> lifetime_s;
  std::optional<std::uint32_t> idle_timeout_s;
  std::optional<std::string> egress;
  std::optional<std::string> policy_file;  // a network policy (JSON) sent as `network`
};

// sandbox.set_network: new rules (a policy file) or a mode for a sandbox.
struct NetworkOptions {
  std::string sandbox;
  std::optional<std::string> egress;
  std::optional<std::string> policy_file;
};

// Prints the new sandbox's id, or with --json the Sandbox object.
int create_command(const Target& target, const CreateOptions& options);
// Prints the sandbox's id, or with --json the Sandbox object with its new network.
int set_network_command(const Target& target, const NetworkOptions& options);
// Prints a table of the caller's sandboxes, or with --json their array.
int list_command(const Target& target, const std::vector<std::string>& labels);
// Destroys each sandbox, printing the id of each one destroyed and a line on
// stderr for each failure; 1 when any failed. With --json: one array with an
// entry per argument.
int remove_command(const Target& target, const std::vector<std::string>& sandboxes);

}  // namespace sandboxd::ctl
