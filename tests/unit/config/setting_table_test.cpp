// The setting table and what it drives besides the config file: defaults
// read off a default DaemonConfig, the flags of `serve`, the hello's limits
// and the reference document.
#include "daemon/config/setting_table.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/config/config_file.hpp"
#include "daemon/config/hello_limits.hpp"
#include "daemon/config/reference_table.hpp"
#include "daemon/config/setting_flags.hpp"
#include "tests/unit/config/every_key_text.hpp"

using namespace sandboxd;
using namespace sandboxd::config;
using sandboxd::config::test::kEveryKeyText;

namespace {

std::vector<std::string> keys() {
  std::vector<std::string> out;
  for (const auto& s : setting_table()) out.emplace_back(s.key);
  return out;
}

// A `serve`-like command with the table's flags, parsed from `args`.
struct ParsedFlags {
  CLI::App app{"serve"};
  SettingFlags flags;
  explicit ParsedFlags(std::vector<std::string> args) {
    add_setting_flags(app, flags);
    std::vector<const char*> argv{"serve"};
    for (const auto& a : args) argv.push_back(a.c_str());
    app.parse(static_cast<int>(argv.size()), argv.data());
  }
};

// The message CLI11 gives for `args`, which must not parse.
std::string flag_error(std::vector<std::string> args) {
  try {
    ParsedFlags parsed(std::move(args));
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  FAIL("the flags parsed");
  return {};
}

DaemonConfig with_flags(std::vector<std::string> args, DaemonConfig base = {}) {
  ParsedFlags parsed(std::move(args));
  auto applied = apply_setting_flags(parsed.flags, base);
  if (!applied) FAIL(applied.error());
  return base;
}

// `document` with the block between the reference's marker lines replaced
// by `block`; empty when the markers are missing.
std::string with_reference_block(const std::string& document, const std::string& block) {
  auto begin = document.find(kReferenceBegin);
  auto end = document.find(kReferenceEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) return {};
  begin = document.find('\n', begin);
  if (begin == std::string::npos || begin > end) return {};
  return document.substr(0, begin + 1) + block + document.substr(end);
}

}  // namespace

TEST_CASE("config: the table has each key once, in the reference's order") {
  CHECK(keys() == std::vector<std::string>{"listen",
                                           "socket_path",
                                           "runtime_dir",
                                           "token_file",
                                           "image_store",
                                           "disk_dir",
                                           "token",
                                           "allowed_origins",
                                           "image",
                                           "pool_size",
                                           "default_cpus",
                                           "default_memory_mib",
                                           "max_cpus",
                                           "max_memory_mib",
                                           "default_file_disk_mib",
                                           "max_disk_mib",
                                           "max_sandboxes_per_token",
                                           "max_frame_bytes",
                                           "max_pending_requests",
                                           "exec_log_bytes",
                                           "exec_retention_s",
                                           "max_retained_execs",
                                           "default_lifetime_s",
                                           "default_idle_timeout_s",
                                           "allowed_host_roots",
                                           "accelerator",
                                           "network",
                                           "egress",
                                           "network_policy",
                                           "host_aliases",
                                           "log_level"});
  for (const auto& s : setting_table()) {
    INFO(s.key);
    CHECK(find_setting(s.key) == &s);
    CHECK_FALSE(s.doc.empty());
    CHECK_FALSE(s.accepts.empty());
  }
  CHECK(find_setting("pol_size") == nullptr);
}

TEST_CASE("config: defaults are read off a default DaemonConfig, spelt as the file spells them") {
  auto fallback = [](std::string_view key) { return find_setting(key)->default_text(); };
  CHECK(fallback("listen") == "127.0.0.1:7070");
  CHECK(fallback("socket_path").empty());
  CHECK(fallback("image") == "default");
  CHECK(fallback("pool_size") == "2");
  CHECK(fallback("max_frame_bytes") == "1M");
  CHECK(fallback("exec_log_bytes") == "16M");
  CHECK(fallback("exec_retention_s") == "10m");
  CHECK(fallback("default_lifetime_s") == "1h");
  CHECK(fallback("accelerator") == "auto");
  CHECK(fallback("network") == "stack");
  CHECK(fallback("egress") == "deny-all");
  CHECK(fallback("log_level") == "info");
  // Each default, written back through its parser, is the default again.
  for (const auto& s : setting_table()) {
    INFO(s.key);
    DaemonConfig c;
    REQUIRE(s.set(c, s.default_text()));
    CHECK(c == DaemonConfig{});
  }
}

TEST_CASE("config: every value shows as the file spells it and parses back") {
  auto c = parse_daemon_config(kEveryKeyText);
  REQUIRE(c);
  for (const auto& s : setting_table()) {
    INFO(s.key << " is set by the text");
    CHECK(s.show(*c) != s.default_text());
  }
  CHECK(find_setting("allowed_origins")->show(*c) == "https://app.example.com, http://localhost:3000");
  CHECK(find_setting("allowed_host_roots")->show(*c) == "/srv/agents, /data/shared");
  CHECK(find_setting("host_aliases")->show(*c) == "files.internal=127.0.0.1, db.internal=10.1.2.3");
  CHECK(find_setting("exec_log_bytes")->show(*c) == "32M");
  CHECK(find_setting("exec_retention_s")->show(*c) == "15m");
  CHECK(find_setting("default_idle_timeout_s")->show(*c) == "0s");
  CHECK(find_setting("log_level")->show(*c) == "debug");
  REQUIRE(find_setting("exec_log_bytes")->set(*c, "1000000"));
  CHECK(find_setting("exec_log_bytes")->show(*c) == "1000000");
  REQUIRE(find_setting("exec_retention_s")->set(*c, "90"));
  CHECK(find_setting("exec_retention_s")->show(*c) == "90s");
  for (const auto& s : setting_table()) {
    if (s.key == "token") continue;  // never shown (below)
    INFO(s.key);
    DaemonConfig again;
    REQUIRE(s.set(again, s.show(*c)));
    CHECK(s.show(again) == s.show(*c));
  }
}

TEST_CASE("config: a token is never shown") {
  DaemonConfig c;
  REQUIRE(find_setting("token")->set(c, "0123456789abcdef0123"));
  CHECK(c.access.token == "0123456789abcdef0123");
  CHECK(find_setting("token")->show(c) == "(secret)");
  CHECK(find_setting("token")->default_text().empty());
  CHECK(reference_table_markdown().find("(secret)") == std::string::npos);
}

TEST_CASE("config: the flags of serve are the table's") {
  std::map<std::string, std::string> flags;
  for (const auto& s : setting_table())
    if (!s.flag.empty()) flags[std::string(s.flag)] = s.key;
  CHECK(flags == std::map<std::string, std::string>{{"--listen", "listen"},
                                                    {"--socket", "socket_path"},
                                                    {"--runtime-dir", "runtime_dir"},
                                                    {"--token-file", "token_file"}, {"--image-store", "image_store"}, {"--disk-dir", "disk_dir"},
                                                    {"--allow-origin", "allowed_origins"}, {"--allow-host-root", "allowed_host_roots"},
                                                    {"--image", "image"},
                                                    {"--pool-size", "pool_size"},
                                                    {"--accel", "accelerator"},
                                                    {"--network", "network"},
                                                    {"--egress", "egress"},
                                                    {"--policy", "network_policy"},
                                                    {"--host-alias", "host_aliases"},
                                                    {"--log-level", "log_level"}});
  for (const auto& s : setting_table())
    CHECK(s.flag_repeats == (s.key == "allowed_origins" || s.key == "allowed_host_roots" || s.key == "host_aliases"));
}

TEST_CASE("config: each flag sets its setting") {
  auto c = with_flags({"--listen",       "[::1]:9000",
                       "--socket",       "none",
                       "--runtime-dir",  "/run/x",
                       "--token-file",   "/etc/t",
                       "--allow-origin", "https://a.example",
                       "--allow-origin", "http://b.example:8080",
                       "--image",        "tiny",
                       "--pool-size",    "3",
                       "--accel",        "tcg",
                       "--network",      "slirp",
                       "--egress",       "allow-all",
                       "--log-level",    "debug"});
  DaemonConfig expected;
  expected.listen = {"[::1]:9000", "none"};
  expected.runtime.dir = "/run/x";
  expected.access.token_file = "/etc/t";
  expected.access.allowed_origins = {"https://a.example", "http://b.example:8080"};
  expected.service.default_image = "tiny";
  expected.pool.warm_per_shape = 3;
  expected.machine = {vm::AcceleratorRequest{vm::Accelerator::kTcg}, vm::NetworkMode::kSlirp};
  expected.service.default_egress = net::EgressMode::kAllowAll;
  expected.log.level = spdlog::level::debug;
  CHECK(c == expected);
  CHECK(with_flags({}) == DaemonConfig{});
  // An empty value is a value: no TCP listener.
  CHECK(with_flags({"--listen", ""}).listen.address.empty());
}

TEST_CASE("config: a flag is checked by its setting's parser, and the message names the flag") {
  CHECK(flag_error({"--pool-size", "65"}) == "--pool-size: expected an integer 0..64");
  CHECK(flag_error({"--pool-size", "-1"}) == "--pool-size: expected an integer 0..64");
  CHECK(flag_error({"--network", "user"}) == "--network: expected stack, slirp or none");
  CHECK(flag_error({"--egress", "allow"}) == "--egress: expected deny-all or allow-all");
  CHECK(flag_error({"--accel", "hvf"}) == "--accel: expected auto, kvm or tcg");
  CHECK(flag_error({"--log-level", "warning"}) == "--log-level: expected trace, debug, info, warn, error or off");
  CHECK(flag_error({"--runtime-dir", "run/x"}) ==
        "--runtime-dir: expected an absolute path, or nothing for the default");
  CHECK(flag_error({"--token-file", "~/token"}) ==
        "--token-file: expected an absolute path, or nothing for the default");
  CHECK(flag_error({"--socket", "api.sock"}) ==
        "--socket: expected an absolute path of at most 107 bytes, none, or nothing for the default");
  CHECK(flag_error({"--listen", "::1:7070"}) == "--listen: an IPv6 address goes in brackets, as in [::1]:7070");
  CHECK(flag_error({"--image", "a/b"}) == "--image: expected an image name (letters, digits, '-', '_' and '.')");
  CHECK(flag_error({"--allow-origin", "https://ok.example", "--allow-origin", "a.example"}) ==
        "--allow-origin: 'a.example' is not an origin (scheme://host[:port], no path) or *");
}

TEST_CASE("config: flags override the config file, and the rest of the file stays") {
  auto file = parse_daemon_config("pool_size = 5\nimage = big\nallowed_origins = https://old.example\nmax_cpus = 8\n");
  REQUIRE(file);
  auto c = with_flags({"--pool-size", "1", "--allow-origin", "https://new.example"}, *file);
  CHECK(c.pool.warm_per_shape == 1);
  CHECK(c.access.allowed_origins == std::vector<std::string>{"https://new.example"});
  CHECK(c.service.default_image == "big");
  CHECK(c.service.max_cpus == 8);
}

TEST_CASE("config: serve --help shows each flag's doc line from the table") {
  CLI::App app{"serve"};
  SettingFlags flags;
  add_setting_flags(app, flags);
  const std::string help = app.help();
  for (const auto& s : setting_table()) {
    INFO(s.key);
    if (s.flag.empty()) {
      CHECK(help.find(s.doc) == std::string::npos);
    } else {
      CHECK(help.find(std::string(s.flag)) != std::string::npos);
      CHECK(help.find(s.doc) != std::string::npos);
    }
  }
}

TEST_CASE("config: the hello reports its limits under their config keys") {
  auto limits = hello_limits(DaemonConfig{});
  CHECK(boost::json::serialize(limits) ==
        R"({"max_cpus":4,"max_memory_mib":4096,"max_disk_mib":65536,"max_sandboxes_per_token":16,)"
        R"("max_frame_bytes":1048576,)"
        R"("max_pending_requests":64,"max_sandboxes":16})");
  auto c = parse_daemon_config("max_sandboxes_per_token = 3\nmax_frame_bytes = 2K\n");
  REQUIRE(c);
  limits = hello_limits(*c);
  CHECK(limits.at("max_sandboxes_per_token") == 3);
  // The old name of max_sandboxes_per_token, for clients written against it.
  CHECK(limits.at("max_sandboxes") == 3);
  CHECK(limits.at("max_frame_bytes") == 2048);
  std::set<std::string> in_hello;
  for (const auto& s : setting_table())
    if (s.in_hello) in_hello.emplace(s.key);
  CHECK(in_hello == std::set<std::string>{"max_cpus", "max_memory_mib", "max_disk_mib", "max_sandboxes_per_token",
                                          "max_frame_bytes", "max_pending_requests"});
}

TEST_CASE("config: the reference document matches the settings table") {
  std::ifstream in(SANDBOXD_CONFIG_REFERENCE);
  REQUIRE(in);
  std::stringstream read;
  read << in.rdbuf();
  const std::string document = read.str();
  const std::string expected = with_reference_block(document, reference_table_markdown());
  REQUIRE_FALSE(expected.empty());
  if (document != expected) {
    // The document as the table has it, to be copied over the source.
    std::ofstream(SANDBOXD_CONFIG_REFERENCE_UPDATE, std::ios::trunc) << expected;
    FAIL("the settings reference in " SANDBOXD_CONFIG_REFERENCE
         " differs from the table; the table's version is "
         "in " SANDBOXD_CONFIG_REFERENCE_UPDATE);
  }
}
