#include <catch2/catch.hpp>

#include <cerrno>
#include <map>

#include "clients/sandboxctl/client_config.hpp"

using namespace sandboxd::ctl;

namespace {

// A pretend environment and file system.
struct World {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;
  std::map<std::string, int> unreadable;  // path -> errno

  GetEnv get_env() const {
    return [this](const std::string& name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
  }
  ReadFile read_file() const {
    return [this](const std::string& path) {
      ReadResult out;
      if (auto bad = unreadable.find(path); bad != unreadable.end()) {
        out.error = bad->second;
      } else if (auto it = files.find(path); it != files.end()) {
        out.text = it->second;
      } else {
        out.error = ENOENT;
      }
      return out;
    };
  }
  sandboxd::Expected<ClientConfig, std::string> resolve(const ConfigFlags& flags = {}) const {
    return resolve_client_config(flags, get_env(), read_file());
  }
};

constexpr const char* kConfig = "/home/u/.config/sandboxd/client.conf";

}  // namespace

TEST_CASE("with nothing configured: the default URL and no token") {
  World world;
  world.env["HOME"] = "/home/u";
  auto config = world.resolve();
  REQUIRE(config);
  CHECK(config->url == "ws://127.0.0.1:7070/v1");
  CHECK(config->token.empty());
}

TEST_CASE("default token files: the system one, then the user's state directory") {
  World world;
  world.env["HOME"] = "/home/u";
  CHECK(default_token_files(world.get_env()) ==
        std::vector<std::string>{"/var/lib/sandboxd/token", "/home/u/.local/state/sandboxd/token"});
  world.env["XDG_STATE_HOME"] = "/state";
  CHECK(default_token_files(world.get_env())[1] == "/state/sandboxd/token");

  world.files["/state/sandboxd/token"] = "user-token\n";
  auto config = world.resolve();
  REQUIRE(config);
  CHECK(config->token == "user-token");

  world.files["/var/lib/sandboxd/token"] = "  system-token \n";
  config = world.resolve();
  REQUIRE(config);
  CHECK(config->token == "system-token");
  CHECK(config->token_source == "/var/lib/sandboxd/token");

  // Not readable (another user's daemon): skipped, not an error.
  world.unreadable["/var/lib/sandboxd/token"] = EACCES;
  config = world.resolve();
  REQUIRE(config);
  CHECK(config->token == "user-token");
}

TEST_CASE("the config file: its place, its format") {
  World world;
  world.env["HOME"] = "/home/u";
  CHECK(default_config_file(world.get_env()) == kConfig);
  world.env["XDG_CONFIG_HOME"] = "/xdg";
  CHECK(default_config_file(world.get_env()) == "/xdg/sandboxd/client.conf");
  world.env.erase("XDG_CONFIG_HOME");

  world.files[kConfig] =
      "# the daemon on the build box\n"
      "\n"
      "  url = unix:/run/sandboxd/api.sock  \n"
      "token=ab#cd\n";
  auto config = world.resolve();
  REQUIRE(config);
  CHECK(config->url == "unix:/run/sandboxd/api.sock");
  CHECK(config->token == "ab#cd");
  CHECK(config->token_source == kConfig);

  SECTION("token_file: relative to the config file, ~ for the home") {
    world.files[kConfig] = "token_file = secret\n";
    world.files["/home/u/.config/sandboxd/secret"] = "from-relative\n";
    config = world.resolve();
    REQUIRE(config);
    CHECK(config->token == "from-relative");
    world.files[kConfig] = "token_file = \"~/tok\"\n";
    world.files["/home/u/tok"] = "from-home";
    config = world.resolve();
    REQUIRE(config);
    CHECK(config->token == "from-home");
  }
  SECTION("a token beats a token_file at the same level") {
    world.files[kConfig] = "token_file = /nonexistent\ntoken = direct\n";
    config = world.resolve();
    REQUIRE(config);
    CHECK(config->token == "direct");
  }
  SECTION("errors name the file and line") {
    world.files[kConfig] = "url = ws://h/v1\nnonsense\n";
    config = world.resolve();
    REQUIRE_FALSE(config);
    CHECK(config.error().find("client.conf:2:") != std::string::npos);
    world.files[kConfig] = "tokne = x\n";
    config = world.resolve();
    REQUIRE_FALSE(config);
    CHECK(config.error().find("unknown key 'tokne'") != std::string::npos);
    world.files[kConfig] = "token =\n";
    CHECK_FALSE(world.resolve());
  }
  SECTION("a named token file that cannot be read is an error") {
    world.files[kConfig] = "token_file = /missing\n";
    config = world.resolve();
    REQUIRE_FALSE(config);
    CHECK(config.error().find("/missing") != std::string::npos);
  }
  SECTION("an empty token file is an error") {
    world.files[kConfig] = "token_file = /empty\n";
    world.files["/empty"] = " \n";
    CHECK_FALSE(world.resolve());
  }
}

TEST_CASE("--config must exist; the default one may be missing") {
  World world;
  world.env["HOME"] = "/home/u";
  ConfigFlags flags;
  flags.config_file = "/etc/mine.conf";
  auto config = world.resolve(flags);
  REQUIRE_FALSE(config);
  CHECK(config.error().find("/etc/mine.conf") != std::string::npos);

  world.files["/etc/mine.conf"] = "url = ws://other:1/v1\n";
  world.files[kConfig] = "url = ws://ignored:2/v1\n";
  config = world.resolve(flags);
  REQUIRE(config);
  CHECK(config->url == "ws://other:1/v1");

  // The default file exists but cannot be read: reported, not ignored.
  world.unreadable[kConfig] = EACCES;
  config = world.resolve();
  REQUIRE_FALSE(config);
}

TEST_CASE("precedence: flags over environment over config file over defaults") {
  World world;
  world.env["HOME"] = "/home/u";
  world.files["/var/lib/sandboxd/token"] = "default-token";
  world.files[kConfig] = "url = ws://file:1/v1\ntoken = file-token\n";

  auto config = world.resolve();
  REQUIRE(config);
  CHECK(config->url == "ws://file:1/v1");
  CHECK(config->token == "file-token");

  world.env["SANDBOXD_URL"] = "ws://env:2/v1";
  world.env["SANDBOXD_TOKEN_FILE"] = "/run/env-token";
  world.files["/run/env-token"] = "env-file-token\n";
  config = world.resolve();
  REQUIRE(config);
  CHECK(config->url == "ws://env:2/v1");
  CHECK(config->token == "env-file-token");

  world.env["SANDBOXD_TOKEN"] = "env-token";
  config = world.resolve();
  REQUIRE(config);
  CHECK(config->token == "env-token");
  CHECK(config->token_source == "SANDBOXD_TOKEN");

  ConfigFlags flags;
  flags.url = "unix:/flag.sock";
  flags.token_file = "/flag-token";
  world.files["/flag-token"] = "flag-file-token";
  config = world.resolve(flags);
  REQUIRE(config);
  CHECK(config->url == "unix:/flag.sock");
  CHECK(config->token == "flag-file-token");

  flags.token = "flag-token";
  config = world.resolve(flags);
  REQUIRE(config);
  CHECK(config->token == "flag-token");

  SECTION("empty variables count as unset") {
    world.env["SANDBOXD_URL"] = "";
    world.env["SANDBOXD_TOKEN"] = "";
    world.env["SANDBOXD_TOKEN_FILE"] = "";
    config = world.resolve();
    REQUIRE(config);
    CHECK(config->url == "ws://file:1/v1");
    CHECK(config->token == "file-token");
  }
}
