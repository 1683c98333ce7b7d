// The config file's syntax and every key's parsing, through the setting
// table, with the messages a user reads.
#include "daemon/config/config_file.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "tests/unit/config/every_key_text.hpp"
#include "tests/unit/service/scratch_dir.hpp"

using namespace sandboxd;
using namespace sandboxd::config;
using sandboxd::config::test::kEveryKeyText;
using sandboxd::service::test::fresh_dir;
using sandboxd::service::test::write_file;

namespace {
// The error of a text that must not parse.
std::string error_of(std::string_view text, DaemonConfig base = {}) {
  auto c = parse_daemon_config(text, std::move(base));
  REQUIRE_FALSE(c.has_value());
  return c.error();
}

// The config of a text that must parse.
DaemonConfig parsed(std::string_view text, DaemonConfig base = {}) {
  auto c = parse_daemon_config(text, std::move(base));
  if (!c) FAIL(c.error());
  return *c;
}

// The error of `key = value` alone, on line 1.
std::string value_error(const std::string& key, const std::string& value) {
  return error_of(key + " = " + value + "\n");
}
}  // namespace

TEST_CASE("daemon config: an empty text gives the defaults") {
  CHECK(parsed("") == DaemonConfig{});
  CHECK(parsed("\n\n  \n# only a comment\n   # indented comment\n") == DaemonConfig{});
  DaemonConfig d;
  CHECK(d.listen.address == "127.0.0.1:7070");
  CHECK(d.pool.warm_per_shape == 2);
  CHECK(d.service.exec_log_bytes == 16u << 20);
}

TEST_CASE("daemon config: every key is read") {
  auto c = parsed(kEveryKeyText);
  CHECK(c.listen.address == "[::1]:8080");
  CHECK(c.listen.socket_path == "/run/sbx/api.sock");
  CHECK(c.runtime.dir == "/run/sbx");
  CHECK(c.access.token_file == "/etc/sandboxd/token");
  CHECK(c.runtime.image_store == "/srv/sandboxd/images");
  CHECK(c.access.token == "0123456789abcdef0123");
  CHECK(c.access.allowed_origins == std::vector<std::string>{"https://app.example.com", "http://localhost:3000"});
  CHECK(c.service.default_image == "python-3.11");
  CHECK(c.pool.warm_per_shape == 0);
  CHECK(c.service.default_cpus == 2);
  CHECK(c.service.default_memory_mib == 512);
  CHECK(c.service.max_cpus == 8);
  CHECK(c.service.max_memory_mib == 8192);
  CHECK(c.service.max_sandboxes_per_token == 100);
  CHECK(c.connection.max_frame_bytes == 4u << 20);
  CHECK(c.connection.max_pending_requests == 128);
  CHECK(c.service.exec_log_bytes == 32u << 20);
  CHECK(c.service.exec_retention_s == 900);
  CHECK(c.service.max_retained_execs == 50);
  CHECK(c.service.default_lifetime_s == 7200);
  CHECK(c.service.default_idle_timeout_s == 0);
  CHECK(c.machine.accelerator == vm::AcceleratorRequest{vm::Accelerator::kTcg});
  CHECK(c.machine.network == vm::NetworkMode::kSlirp);
  CHECK(c.service.default_egress == net::EgressMode::kAllowAll);
  CHECK(c.log.level == spdlog::level::debug);
}

TEST_CASE("daemon config: keys absent from the text keep the base's values") {
  DaemonConfig base;
  base.pool.warm_per_shape = 7;
  base.service.default_image = "custom";
  base.access.token = "base-token-0123456789";
  base.access.allowed_origins = {"https://a.example"};
  auto c = parsed("listen = 0.0.0.0:9000\n", base);
  CHECK(c.listen.address == "0.0.0.0:9000");
  CHECK(c.pool.warm_per_shape == 7);
  CHECK(c.service.default_image == "custom");
  CHECK(c.access.token == "base-token-0123456789");
  CHECK(c.access.allowed_origins == base.access.allowed_origins);
  base.listen.address = "0.0.0.0:9000";
  CHECK(c == base);
}

TEST_CASE("daemon config: blanks, comments and line ends") {
  auto c =
      parsed("# header\r\n\tpool_size\t=\t3\t\r\n\r\nimage=tiny   # the small one\nlog_level = warn\t# a comment\n");
  CHECK(c.pool.warm_per_shape == 3);
  CHECK(c.service.default_image == "tiny");
  CHECK(c.log.level == spdlog::level::warn);
  // '#' starts a comment only after a blank.
  auto err = error_of("log_level = warn#x\n");
  CHECK(err == "line 1: log_level: expected trace, debug, info, warn, error or off");
  CHECK(parsed("token = abcdefgh#ijklmnop\n").access.token == "abcdefgh#ijklmnop");
  // A comment right after '=' leaves the value empty.
  CHECK(parsed("listen = # no TCP\n").listen.address.empty());
  CHECK(parsed("listen =").listen.address.empty());
  // The last line needs no line end.
  CHECK(parsed("pool_size = 5").pool.warm_per_shape == 5);
}

TEST_CASE("daemon config: quoted values") {
  CHECK(parsed(R"(runtime_dir = "/tmp/with space/x")").runtime.dir == "/tmp/with space/x");
  CHECK(parsed(R"(image = "default"  # quoted, then a comment)").service.default_image == "default");
  auto c = parse_daemon_config(R"(token = "abc\"def\\ghi#jklmno")");
  REQUIRE(c);
  CHECK(c->access.token == R"(abc"def\ghi#jklmno)");
  CHECK(parsed(R"(listen = "")").listen.address.empty());
  CHECK(parsed(R"(socket_path = "none")").listen.socket_path == "none");
}

TEST_CASE("daemon config: quoting errors") {
  CHECK(value_error("image", R"("default)") == "line 1: image: the quoted value has no closing quote");
  CHECK(value_error("image", R"("def\ault")") == R"(line 1: image: in quotes a backslash may only come before " or \)");
  CHECK(value_error("image", R"("default" x)") == "line 1: image: unexpected text after the closing quote");
  CHECK(value_error("image", R"("trailing\")") == "line 1: image: the quoted value has no closing quote");
  CHECK(value_error("image", "\"a\x01b\"") == "line 1: image: control characters are not allowed in values");
  CHECK(value_error("image", "a\x7f") == "line 1: image: control characters are not allowed in values");
  CHECK(value_error("image", "\"a\tb\"") == "line 1: image: control characters are not allowed in values");
}

TEST_CASE("daemon config: line errors name the line and the key") {
  CHECK(error_of("pool_size = 2\n\n\n\n# c\nimage = x\npol_size = 3\n") == "line 7: unknown key 'pol_size'");
  CHECK(error_of("# c\n\npool_size = 65\n") == "line 3: pool_size: expected an integer 0..64");
  CHECK(error_of("pool_size = 1\nimage = a\npool_size = 2\n") ==
        "line 3: duplicate key 'pool_size' (first set on line 1)");
  CHECK(error_of("image a\n") == "line 1: expected key = value");
  CHECK(error_of(" = x\n") == "line 1: expected a key before '='");
  CHECK(error_of("Pool_Size = 1\n") == "line 1: unknown key 'Pool_Size'");
  // What is echoed from the file is shown safely and kept short.
  CHECK(error_of("\x1b[31m = 1\n") == "line 1: unknown key '\\x1b[31m'");
  CHECK(error_of(std::string(100, 'k') + " = 1\n") == "line 1: unknown key '" + std::string(64, 'k') + "...'");
}

TEST_CASE("daemon config: integers") {
  CHECK(parsed("pool_size = 64").pool.warm_per_shape == 64);
  CHECK(parsed("pool_size = 0").pool.warm_per_shape == 0);
  CHECK(parsed("pool_size = 007").pool.warm_per_shape == 7);
  for (const char* bad : {"-1", "+1", "1.0", "0x10", "", "1 2", "1k", "99999999999999999999999"})
    CHECK(value_error("pool_size", bad) == "line 1: pool_size: expected an integer 0..64");
  CHECK(value_error("default_cpus", "0") == "line 1: default_cpus: expected an integer 1..64");
  CHECK(value_error("default_memory_mib", "63") == "line 1: default_memory_mib: expected an integer 64..65536");
  CHECK(value_error("max_cpus", "65") == "line 1: max_cpus: expected an integer 1..64");
  CHECK(value_error("max_memory_mib", "65537") == "line 1: max_memory_mib: expected an integer 64..65536");
  CHECK(value_error("max_sandboxes_per_token", "0") == "line 1: max_sandboxes_per_token: expected an integer 1..10000");
  CHECK(value_error("max_pending_requests", "10001") == "line 1: max_pending_requests: expected an integer 1..10000");
  CHECK(value_error("max_retained_execs", "1000001") == "line 1: max_retained_execs: expected an integer 0..1000000");
}

TEST_CASE("daemon config: a default must be within its maximum") {
  CHECK(error_of("default_cpus = 8\n") == "line 1: default_cpus: 8 is more than max_cpus (4)");
  CHECK(parsed("default_cpus = 8\nmax_cpus = 16\n").service.default_cpus == 8);
  CHECK(error_of("max_cpus = 1\ndefault_cpus = 2\n") == "line 2: default_cpus: 2 is more than max_cpus (1)");
  DaemonConfig base;
  base.service.default_cpus = 4;
  CHECK(error_of("\nmax_cpus = 2\n", base) == "line 2: max_cpus: 2 is less than default_cpus (4)");
  base.service.default_cpus = 8;
  CHECK(error_of("", base) == "default_cpus (8) is more than max_cpus (4)");
  CHECK(error_of("default_memory_mib = 8192\n") ==
        "line 1: default_memory_mib: 8192 is more than max_memory_mib (4096)");
  CHECK(error_of("max_memory_mib = 128\n") == "line 1: max_memory_mib: 128 is less than default_memory_mib (256)");
}

TEST_CASE("daemon config: sizes") {
  CHECK(parsed("exec_log_bytes = 16M").service.exec_log_bytes == 16u << 20);
  CHECK(parsed("exec_log_bytes = 64K").service.exec_log_bytes == 64u << 10);
  CHECK(parsed("exec_log_bytes = 1G").service.exec_log_bytes == 1u << 30);
  CHECK(parsed("exec_log_bytes = 1g").service.exec_log_bytes == 1u << 30);
  CHECK(parsed("exec_log_bytes = 65536").service.exec_log_bytes == 65536);
  CHECK(parsed("max_frame_bytes = 1024").connection.max_frame_bytes == 1024);
  CHECK(parsed("max_frame_bytes = 2k").connection.max_frame_bytes == 2048);
  CHECK(parsed("max_frame_bytes = 64M").connection.max_frame_bytes == 64u << 20);
  const std::string exec_error =
      "line 1: exec_log_bytes: expected a size 64K..1G (bytes, or a number with a K, M or G suffix)";
  for (const char* bad : {"63K", "1025M", "2G", "65535", "K", "", "16MB", "16 M", "-1M", "1.5M", "99999999999999999G",
                          "9999999999999999999"})
    CHECK(value_error("exec_log_bytes", bad) == exec_error);
  CHECK(value_error("max_frame_bytes", "1023") ==
        "line 1: max_frame_bytes: expected a size 1K..64M (bytes, or a number with a K, M or G suffix)");
  CHECK(value_error("max_frame_bytes", "65M") ==
        "line 1: max_frame_bytes: expected a size 1K..64M (bytes, or a number with a K, M or G suffix)");
}

TEST_CASE("daemon config: durations") {
  CHECK(parsed("exec_retention_s = 90").service.exec_retention_s == 90);
  CHECK(parsed("exec_retention_s = 90s").service.exec_retention_s == 90);
  CHECK(parsed("exec_retention_s = 15m").service.exec_retention_s == 900);
  CHECK(parsed("default_lifetime_s = 2h").service.default_lifetime_s == 7200);
  CHECK(parsed("default_lifetime_s = 8760h").service.default_lifetime_s == 8760u * 3600);
  CHECK(parsed("default_idle_timeout_s = 0").service.default_idle_timeout_s == 0);
  CHECK(parsed("default_idle_timeout_s = 0m").service.default_idle_timeout_s == 0);
  const std::string error =
      "line 1: default_lifetime_s: expected a duration 0..8760h (seconds, or a number with an s, m or h suffix)";
  for (const char* bad : {"8761h", "31536001", "1d", "-1", "h", "", "1h30m", "1.5h", "10 m", "10M"})
    CHECK(value_error("default_lifetime_s", bad) == error);
}

TEST_CASE("daemon config: choices") {
  CHECK(parsed("accelerator = kvm").machine.accelerator == vm::AcceleratorRequest{vm::Accelerator::kKvm});
  CHECK(parsed("accelerator = auto").machine.accelerator == vm::AcceleratorRequest{});
  CHECK(parsed("network = none").machine.network == vm::NetworkMode::kNone);
  CHECK(parsed("network = stack").machine.network == vm::NetworkMode::kStack);
  CHECK(parsed("egress = deny-all").service.default_egress == net::EgressMode::kDenyAll);
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"})
    CHECK(kLogLevelNames.name(parsed(std::string("log_level = ") + level).log.level) == level);
  CHECK(parsed("log_level = error").log.level == spdlog::level::err);
  CHECK(value_error("accelerator", "hvf") == "line 1: accelerator: expected auto, kvm or tcg");
  CHECK(value_error("accelerator", "KVM") == "line 1: accelerator: expected auto, kvm or tcg");
  CHECK(value_error("network", "user") == "line 1: network: expected stack, slirp or none");
  CHECK(value_error("egress", "allow") == "line 1: egress: expected deny-all or allow-all");
  CHECK(value_error("log_level", "warning") == "line 1: log_level: expected trace, debug, info, warn, error or off");
}

TEST_CASE("daemon config: listen") {
  for (const char* ok : {"127.0.0.1:7070", "0.0.0.0:1", "[::1]:7070", "[::]:65535", "localhost:80",
                         "sandbox-host.example.com:443", "127.0.0.1:0"})
    CHECK(parsed(std::string("listen = ") + ok).listen.address == ok);
  CHECK(parsed("listen = ").listen.address.empty());
  const std::string usage = "line 1: listen: expected host:port or [IPv6 address]:port, or nothing to disable TCP";
  CHECK(value_error("listen", "localhost") == usage);
  CHECK(value_error("listen", ":7070") == usage);
  CHECK(value_error("listen", "[::1]") == usage);
  CHECK(value_error("listen", "[::1") == usage);
  CHECK(value_error("listen", "[::1]7070") == usage);
  CHECK(value_error("listen", "::1:7070") == "line 1: listen: an IPv6 address goes in brackets, as in [::1]:7070");
  CHECK(value_error("listen", "[nope]:7070") == "line 1: listen: 'nope' is not an IPv6 address");
  CHECK(value_error("listen", "999.0.0.1:7070") == "line 1: listen: '999.0.0.1' is not an IPv4 address");
  CHECK(value_error("listen", "a_b:7070") == "line 1: listen: 'a_b' is not a host name or address");
  for (const char* bad_port : {"127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:-1", "127.0.0.1:http", "[::1]:x"})
    CHECK(value_error("listen", bad_port) == "line 1: listen: expected a port 0..65535 after the last ':'");
}

TEST_CASE("daemon config: paths") {
  CHECK(parsed("socket_path = none").listen.socket_path == "none");
  CHECK(parsed("socket_path =").listen.socket_path.empty());
  CHECK(parsed("socket_path = /" + std::string(106, 's')).listen.socket_path.size() == 107);
  const std::string socket_error =
      "line 1: socket_path: expected an absolute path of at most 107 bytes, none, or nothing for the default";
  CHECK(value_error("socket_path", "/" + std::string(107, 's')) == socket_error);
  CHECK(value_error("socket_path", "api.sock") == socket_error);
  CHECK(value_error("socket_path", "None") == socket_error);
  CHECK(parsed("runtime_dir = /var/run/x").runtime.dir == "/var/run/x");
  CHECK(parsed("token_file =").access.token_file.empty());
  CHECK(value_error("runtime_dir", "run/x") ==
        "line 1: runtime_dir: expected an absolute path, or nothing for the default");
  CHECK(value_error("token_file", "~/token") ==
        "line 1: token_file: expected an absolute path, or nothing for the default");
}

TEST_CASE("daemon config: token") {
  CHECK(parsed("token = 0123456789abcdef").access.token == "0123456789abcdef");
  CHECK(parsed("token = ").access.token.empty());
  CHECK(value_error("token", "0123456789abcde") == "line 1: token: expected at least 16 characters");
  CHECK(value_error("token", "\"0123456789 abcdef\"") ==
        "line 1: token: expected 16 to 1024 printable ASCII characters without blanks");
  CHECK(value_error("token", std::string(1025, 'a')) ==
        "line 1: token: expected 16 to 1024 printable ASCII characters without blanks");
  // The value is a secret: no error repeats it.
  for (const char* secret : {"short-secret", "\"a secret with blanks\"", "secret\xc3\xa9secret-secret"}) {
    auto err = value_error("token", secret);
    CHECK(err.find("secret") == std::string::npos);
  }
}

TEST_CASE("daemon config: allowed origins") {
  CHECK(parsed("allowed_origins = *").access.allowed_origins == std::vector<std::string>{"*"});
  CHECK(parsed("host_aliases = a.test=127.0.0.1, B.test.=10.0.0.1").network.host_aliases ==
        std::vector<std::string>{"a.test=127.0.0.1", "B.test.=10.0.0.1"});
  CHECK(value_error("host_aliases", "a.test").find("is not NAME=IP") != std::string::npos);
  CHECK(value_error("host_aliases", "a.test=localhost").find("is not NAME=IP") != std::string::npos);
  CHECK(value_error("host_aliases", "bad name=1.2.3.4").find("is not NAME=IP") != std::string::npos);
  CHECK(value_error("network_policy", "policy.json").find("absolute") != std::string::npos);
  CHECK(parsed("allowed_origins =").access.allowed_origins.empty());
  CHECK(parsed("allowed_origins = https://a.example:8443 ,, http://[::1]:3000,").access.allowed_origins ==
        std::vector<std::string>{"https://a.example:8443", "http://[::1]:3000"});
  DaemonConfig base;
  base.access.allowed_origins = {"https://old.example"};
  CHECK(parsed("allowed_origins = \n", base).access.allowed_origins.empty());
  CHECK(value_error("allowed_origins", "https://a.example/") ==
        "line 1: allowed_origins: 'https://a.example/' is not an origin (scheme://host[:port], no path) or *");
  CHECK(value_error("allowed_origins", "http://ok.example, a.example") ==
        "line 1: allowed_origins: 'a.example' is not an origin (scheme://host[:port], no path) or *");
  CHECK(value_error("allowed_origins", "https://a.example:0").find("is not an origin") != std::string::npos);
}

TEST_CASE("daemon config: image") {
  CHECK(parsed("image = my_image-2.0").service.default_image == "my_image-2.0");
  for (const char* bad : {"", "..", ".", "a/b", "a b", "\"\""})
    CHECK(value_error("image", bad) == "line 1: image: expected an image name (letters, digits, '-', '_' and '.')");
  CHECK(value_error("image", std::string(65, 'a')) ==
        "line 1: image: expected an image name (letters, digits, '-', '_' and '.')");
}

TEST_CASE("daemon config: load from a file") {
  auto dir = fresh_dir("config");
  auto file = dir / "sandboxd.conf";
  write_file(file, "pool_size = 4\nimage = tiny\n", 0644);
  DaemonConfig base;
  base.log.level = spdlog::level::debug;
  auto c = load_daemon_config(file, base);
  REQUIRE(c);
  CHECK(c->pool.warm_per_shape == 4);
  CHECK(c->service.default_image == "tiny");
  CHECK(c->log.level == spdlog::level::debug);

  write_file(file, "pool_size = 4\npool_size = 5\n", 0644);
  auto dup = load_daemon_config(file);
  REQUIRE_FALSE(dup);
  CHECK(dup.error() == file.string() + ": line 2: duplicate key 'pool_size' (first set on line 1)");

  auto missing = load_daemon_config(dir / "absent.conf");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().find("absent.conf") != std::string::npos);
  CHECK(missing.error().find("No such file") != std::string::npos);

  auto directory = load_daemon_config(dir);
  REQUIRE_FALSE(directory);
  CHECK(directory.error().find("is not a regular file") != std::string::npos);

  write_file(file, std::string(kMaxConfigFileBytes, '#'), 0644);
  CHECK(load_daemon_config(file));
  write_file(file, std::string(kMaxConfigFileBytes + 1, '#'), 0644);
  auto large = load_daemon_config(file);
  REQUIRE_FALSE(large);
  CHECK(large.error().find("is larger than 1048576 bytes") != std::string::npos);
}

TEST_CASE("daemon config: a file holding a token must be private") {
  auto file = fresh_dir("config-token") / "sandboxd.conf";
  write_file(file, "pool_size = 1\ntoken = 0123456789abcdef0123\n", 0644);
  auto shared = load_daemon_config(file);
  REQUIRE_FALSE(shared);
  CHECK(shared.error().find("line 2: token: the file may be read by group or other") != std::string::npos);
  CHECK(shared.error().find("chmod 600") != std::string::npos);
  CHECK(shared.error().find("0123456789abcdef0123") == std::string::npos);
  ::chmod(file.c_str(), 0600);
  auto private_file = load_daemon_config(file);
  REQUIRE(private_file);
  CHECK(private_file->access.token == "0123456789abcdef0123");
  // An empty token gives nothing away.
  write_file(file, "token =\n", 0644);
  CHECK(load_daemon_config(file));
}
