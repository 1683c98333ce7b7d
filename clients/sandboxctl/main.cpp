// sandboxctl: the command-line client of sandboxd's WebSocket control plane.
//
// Exit status: 2 for usage, connection and token problems, 1 when the daemon
// answered a request with an error, else (exec, shell, attach) the exec's own
// status; see README.md.
#include <CLI/CLI.hpp>
#include <csignal>
#include <exception>
#include <iostream>

#include "clients/sandboxctl/client_config.hpp"
#include "clients/sandboxctl/commands.hpp"
#include "clients/sandboxctl/exec_session.hpp"
#include "clients/sandboxctl/exec_stream.hpp"
#include "clients/sandboxctl/file_copy.hpp"
#include "clients/sandboxctl/key_values.hpp"
#include "protocol/ws/binary_frame.hpp"

namespace {

using namespace sandboxd::ctl;
using sandboxd::Expected;
using sandboxd::Unexpected;

// Repeatable K=V options take one value per occurrence, so
// "--env A=1 SANDBOX" does not swallow the sandbox.
CLI::Option* add_key_values(CLI::App& app, const std::string& name, std::vector<std::string>& into,
                            const std::string& help) {
  return app.add_option(name, into, help)->allow_extra_args(false)->type_name("K=V");
}

struct Globals {
  ConfigFlags flags;
  bool json = false;
};

Expected<Target, std::string> resolve_target(const Globals& globals) {
  auto config = resolve_client_config(globals.flags, process_env(), file_system_reader());
  if (!config) return Unexpected{config.error()};
  auto url = parse_ws_url(config->url);
  if (!url) return Unexpected{"bad daemon URL '" + config->url + "': " + url.error()};
  return Target{*url, config->token, config->token_source, globals.json};
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout shows as EPIPE where sandboxctl writes, which it handles.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"sandboxctl: create sandboxes and run commands in them through sandboxd-host"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", std::string(SANDBOXD_VERSION));

  Globals globals;
  app.add_option("--url", globals.flags.url,
                 "Daemon: ws://HOST:PORT/v1 or unix:/path/to/api.sock (default ws://127.0.0.1:7070/v1; "
                 "env SANDBOXD_URL)");
  app.add_option("--token", globals.flags.token, "Bearer token (env SANDBOXD_TOKEN)");
  app.add_option("--token-file", globals.flags.token_file, "File holding the token (env SANDBOXD_TOKEN_FILE)");
  app.add_option("--config", globals.flags.config_file,
                 "Client config file (default $XDG_CONFIG_HOME/sandboxd/client.conf)");
  app.add_flag("--json", globals.json, "Machine-readable output (see README.md)");

  CreateOptions create;
  auto* create_cmd = app.add_subcommand("create", "Create a sandbox and print its id");
  create_cmd->add_option("--image", create.image, "Guest image name (default: the daemon's)");
  create_cmd->add_option("--cpus", create.cpus, "Virtual CPUs")->check(CLI::PositiveNumber);
  create_cmd->add_option("--memory", create.memory_mib, "Memory in MiB")->check(CLI::PositiveNumber);
  create_cmd->add_option("--disk", create.disk_mib, "Size of the writable layer in MiB")->check(CLI::PositiveNumber);
  create_cmd->add_option("--disk-backing", create.disk_backing,
                         "Where the writable layer lives: memory (a tmpfs in the guest) or file (a disk on the host)")
      ->check(CLI::IsMember({"memory", "file"}));
  add_key_values(*create_cmd, "--label", create.labels, "Label K=V (repeatable)");
  add_key_values(*create_cmd, "--env", create.env, "Environment variable for every exec, K=V (repeatable)");
  create_cmd->add_option("--lifetime", create.lifetime_s, "Destroy after this many seconds (0: never)");
  create_cmd->add_option("--idle-timeout", create.idle_timeout_s,
                         "Destroy after this many seconds without a running exec (0: never)");
  auto* create_egress = create_cmd->add_option("--egress", create.egress, "Network beyond the sandbox")
                            ->check(CLI::IsMember({"deny-all", "allow-all"}));
  create_cmd->add_option("--policy", create.policy_file, "Network policy file (JSON rules; WS_PROTOCOL.md)")
      ->check(CLI::ExistingFile)
      ->excludes(create_egress);

  NetworkOptions network;
  auto* network_cmd = app.add_subcommand("set-network", "Replace a sandbox's network policy for its new flows");
  network_cmd->add_option("sandbox", network.sandbox, "Sandbox id")->required();
  auto* network_egress = network_cmd->add_option("--egress", network.egress, "A mode: deny-all or allow-all")
                             ->check(CLI::IsMember({"deny-all", "allow-all"}));
  network_cmd->add_option("--policy", network.policy_file, "Network policy file (JSON rules; WS_PROTOCOL.md)")
      ->check(CLI::ExistingFile)
      ->excludes(network_egress);

  std::vector<std::string> list_labels;
  auto* list_cmd = app.add_subcommand("ls", "List your sandboxes");
  list_cmd->alias("list");
  add_key_values(*list_cmd, "--label", list_labels, "Only sandboxes with label K=V (repeatable; all must match)");

  std::vector<std::string> remove_ids;
  auto* remove_cmd = app.add_subcommand("rm", "Destroy sandboxes");
  remove_cmd->add_option("sandbox", remove_ids, "Sandbox ids")->required();

  ExecRequest exec;
  std::optional<double> exec_timeout;
  std::optional<std::string> exec_id;
  std::vector<std::string> exec_env;
  auto* exec_cmd = app.add_subcommand("exec", "Run a command in a sandbox: exec [options] SANDBOX -- ARGV...");
  exec_cmd->add_flag("-i,--stdin", exec.forward_stdin, "Forward stdin to the command");
  exec_cmd->add_flag("-t,--tty", exec.tty, "Run on a pseudo-terminal (with -i: local terminal in raw mode)");
  add_key_values(*exec_cmd, "--env", exec_env, "Environment variable K=V (repeatable)");
  exec_cmd->add_option("--cwd", exec.cwd, "Working directory in the sandbox");
  exec_cmd->add_option("-u,--user", exec.user, "Guest account to run as (default root)");
  exec_cmd->add_option("--timeout", exec_timeout, "Kill the command after this many seconds")
      ->check(CLI::NonNegativeNumber);
  exec_cmd->add_option("--id", exec_id, "Exec id (default: a generated one)");
  exec_cmd->add_option("--shell", exec.shell, "Run this string with /bin/sh -c instead of ARGV");
  exec_cmd->add_option("sandbox", exec.sandbox, "Sandbox id")->required();
  exec_cmd->add_option("argv", exec.argv, "Command and arguments (after --)");

  std::string shell_sandbox;
  std::string shell_program = "/bin/sh";
  auto* shell_cmd = app.add_subcommand("shell", "An interactive login shell in a sandbox");
  std::optional<std::string> shell_user;
  shell_cmd->add_option("--shell", shell_program, "Shell to run")->capture_default_str();
  shell_cmd->add_option("-u,--user", shell_user, "Guest account to log in as (default root)");
  shell_cmd->add_option("sandbox", shell_sandbox, "Sandbox id")->required();

  ExecRequest attach;
  attach.mode = ExecRequest::Mode::kAttach;
  auto* attach_cmd = app.add_subcommand("attach", "Stream an existing exec and exit with its status");
  attach_cmd->add_option("--after-seq", attach.after_seq, "Replay only entries after this sequence number");
  attach_cmd->add_flag("--read-only", attach.read_only, "Only watch: no stdin, signals or resizing");
  attach_cmd->add_flag("-i,--stdin", attach.forward_stdin, "Forward stdin to the exec");
  attach_cmd->add_option("exec", attach.exec_id, "Exec id")->required();

  CopyOptions copy;
  auto* copy_cmd =
      app.add_subcommand("cp", "Copy a file into or out of a sandbox: cp SRC DST, one of them SANDBOX:/PATH");
  copy_cmd->add_option("-u,--user", copy.user, "Guest account that reads or writes the sandbox's file (default root)");
  copy_cmd->add_option("--mode", copy.mode,
                       "Permission bits of the file made, octal (default: the replaced file's; a new upload 0644, "
                       "a new download 0666 less the umask)");
  copy_cmd->add_option("source", copy.source, "SANDBOX:/PATH, a local file, or - for stdin")->required();
  copy_cmd->add_option("destination", copy.destination, "SANDBOX:/PATH, a local path, or - for stdout")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  try {
    auto target = resolve_target(globals);
    if (!target) {
      std::cerr << "sandboxctl: " << target.error() << "\n";
      return kExitUsage;
    }

    if (*create_cmd) return create_command(*target, create);
    if (*network_cmd) {
      if (!network.egress && !network.policy_file) {
        std::cerr << "sandboxctl set-network: give --policy FILE or --egress MODE\n";
        return kExitUsage;
      }
      return set_network_command(*target, network);
    }
    if (*list_cmd) return list_command(*target, list_labels);
    if (*remove_cmd) return remove_command(*target, remove_ids);
    if (*copy_cmd) return copy_command(*target, copy);

    if (*exec_cmd) {
      if (exec.shell && !exec.argv.empty()) {
        std::cerr << "sandboxctl: exec: give a command after -- or --shell, not both\n";
        return kExitUsage;
      }
      if (!exec.shell && exec.argv.empty()) {
        std::cerr << "sandboxctl: exec: no command: give it after the sandbox (exec SANDBOX -- ARGV...) or "
                     "with --shell\n";
        return kExitUsage;
      }
      auto env = parse_key_values(exec_env, "--env");
      if (!env) {
        std::cerr << "sandboxctl: " << env.error() << "\n";
        return kExitUsage;
      }
      exec.env = std::move(*env);
      if (exec_timeout) exec.timeout_ms = static_cast<std::uint64_t>(*exec_timeout * 1000.0 + 0.5);
      exec.exec_id = exec_id ? *exec_id : generate_exec_id();
      if (!sandboxd::protocol::ws::valid_exec_id(exec.exec_id)) {
        std::cerr << "sandboxctl: --id: exec ids are 1..64 of A-Z a-z 0-9 . _ -\n";
        return kExitUsage;
      }
      return run_exec(*target, exec);
    }
    if (*shell_cmd) {
      ExecRequest shell;
      shell.sandbox = shell_sandbox;
      shell.argv = {shell_program, "-l"};
      shell.user = shell_user;
      shell.tty = true;
      shell.forward_stdin = true;
      shell.exec_id = generate_exec_id();
      return run_exec(*target, shell);
    }
    if (*attach_cmd) {
      if (!sandboxd::protocol::ws::valid_exec_id(attach.exec_id)) {
        std::cerr << "sandboxctl: '" << attach.exec_id << "' is not an exec id\n";
        return kExitUsage;
      }
      return run_exec(*target, attach);
    }
  } catch (const std::exception& e) {
    // Unwinding has restored the terminal by now.
    std::cerr << "sandboxctl: " << e.what() << "\n";
    return kExitUsage;
  }
  return kExitUsage;
}
