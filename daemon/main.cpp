// sandboxd-host: the sandboxd daemon and its command-line entry points.
#include <CLI/CLI.hpp>
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/cli/image_command.hpp"
#include "daemon/cli/net_serve_command.hpp"
#include "daemon/cli/run_command.hpp"
#include "daemon/cli/serve_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sandboxd-host: disposable Linux micro-VMs for AI agents"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(SANDBOXD_VERSION));
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "More log output (repeat for debug)");

  sandboxd::cli::RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "Boot a sandbox, run one command in it, exit with its status");
  run_cmd->add_option("--image", run.image, "Guest image name")->capture_default_str();
  run_cmd->add_option("--cpus", run.cpus, "Virtual CPUs")->check(CLI::Range(1, 64))->capture_default_str();
  run_cmd->add_option("--memory", run.memory_mib, "Memory in MiB")->check(CLI::Range(64, 65536))->capture_default_str();
  run_cmd->add_option("--accel", run.accelerator, "Accelerator: auto, kvm or tcg")->capture_default_str();
  run_cmd->add_option("-e,--env", run.env, "Environment variable NAME=value (repeatable)")
      ->check([](const std::string& s) { return s.find('=') == std::string::npos || s.front() == '=' ? "expected NAME=value" : ""; });
  run_cmd->add_option("-w,--workdir", run.cwd, "Working directory in the guest")->capture_default_str();
  run_cmd->add_option("-u,--user", run.user, "Guest account to run as (from the guest's /etc/passwd; default root)");
  run_cmd->add_option("--net", run.network, "Guest network: stack, slirp (QEMU's user network) or none")
      ->check(CLI::IsMember({"stack", "slirp", "none"}))
      ->capture_default_str();
  sandboxd::cli::add_network_options(*run_cmd, run.net);
  run_cmd->add_flag("--timing", run.print_timing, "Print boot and total time to stderr");
  run_cmd->add_option("command", run.command, "Command and arguments (after --)")->required();
  run_cmd->positionals_at_end();

  sandboxd::cli::NetServeOptions net_serve;
  auto* net_serve_cmd = app.add_subcommand(
      "net-serve", "Serve one sandbox network on a unix socket without a VM (for frame-level tests)");
  net_serve_cmd->add_option("--socket", net_serve.socket_path, "Unix socket to listen on")->required();
  sandboxd::cli::add_network_options(*net_serve_cmd, net_serve.network);

  sandboxd::cli::ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve", "Run the daemon: warm VM pools and the WebSocket control plane");
  sandboxd::cli::add_serve_options(*serve_cmd, serve);

  sandboxd::cli::ImageListOptions image_list;
  auto* image_cmd = app.add_subcommand("image", "Guest images");
  image_cmd->require_subcommand(1);
  auto* image_list_cmd = image_cmd->add_subcommand("list", "The guest images this host boots, with their layers");
  image_list_cmd->add_flag("--json", image_list.json, "One JSON array");
  sandboxd::cli::ImageRemoveOptions image_remove;
  auto* image_rm_cmd = image_cmd->add_subcommand("rm", "Remove checkpoint images from the image store");
  image_rm_cmd->add_option("names", image_remove.names, "Image names")->required();
  image_rm_cmd->add_option("--image-store", image_remove.image_store,
                           "The image store (default: images/ in the daemon's state directory)");
  image_list_cmd->add_option("--image-store", image_list.image_store,
                             "The image store, searched after the other roots (default: images/ in the daemon's state "
                             "directory)");
  sandboxd::cli::ImageBuildOptions image_build;
#ifdef SANDBOXD_IMAGE_CACHE
  image_build.cache = SANDBOXD_IMAGE_CACHE;
#else
  image_build.cache = "/var/cache/sandboxd";
#endif
  // Where this build's image builder and agent are; SANDBOXD_IMAGE_BUILDER,
  // SANDBOXD_IMAGE_CONFIG and SANDBOXD_AGENT name them elsewhere.
  sandboxd::cli::ImageBuilderPaths image_builder;
#ifdef SANDBOXD_IMAGE_BUILDER
  image_builder.builder = SANDBOXD_IMAGE_BUILDER;
  image_builder.shipped_config = SANDBOXD_IMAGE_CONFIG;
#endif
#ifdef SANDBOXD_AGENT
  image_builder.agent = SANDBOXD_AGENT;
#endif
  auto* image_build_cmd =
      image_cmd->add_subcommand("build", "Build a layered image (yours with --config) into the image store (as root)");
  image_build_cmd->add_option("name", image_build.name, "Image name")->required();
  image_build_cmd->add_option("--config", image_build.config,
                              "Your layers and images (images.json's format), added to the shipped image/images.json");
  image_build_cmd->add_option("--image-store", image_build.image_store,
                              "The image store (default: images/ in the daemon's state directory)");
  image_build_cmd->add_option("--cache", image_build.cache, "The builder's package, layer and image cache")
      ->capture_default_str();
  image_build_cmd->add_flag("--json", image_build.json, "Print one JSON object (the builder's output goes to stderr)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : sandboxd::cli::kSandboxFailure;
  }

  auto logger = spdlog::stderr_color_mt("sandboxd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbosity >= 2 ? spdlog::level::debug : verbosity == 1 ? spdlog::level::info : spdlog::level::warn);
  spdlog::cfg::load_env_levels();

  if (*run_cmd) return sandboxd::cli::run_command(run);
  if (*serve_cmd) return sandboxd::cli::serve_command(serve);
  if (*net_serve_cmd) return sandboxd::cli::net_serve_command(net_serve);
  if (*image_list_cmd) return sandboxd::cli::image_list_command(image_list);
  if (*image_rm_cmd) return sandboxd::cli::image_remove_command(image_remove);
  if (*image_build_cmd) return sandboxd::cli::image_build_command(image_build, image_builder);
  return 0;
}
