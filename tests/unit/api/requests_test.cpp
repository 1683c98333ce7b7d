#include <catch2/catch.hpp>

#include <signal.h>

#include <map>

#include <boost/json/parse.hpp>

#include "daemon/api/requests.hpp"

using namespace sandboxd::api;
namespace json = boost::json;

namespace {
json::object obj(const char* text) { return json::parse(text).as_object(); }
std::string field_of(const ApiError& e) { return std::string(e.details.at("field").as_string()); }
}  // namespace

TEST_CASE("requests: the envelope needs an object, an id and an op") {
  auto p = parse_envelope(R"({"id": 7, "op": "sandbox.list", "labels": {"a": "b"}})");
  REQUIRE_FALSE(p.error);
  CHECK(p.envelope.id == json::value(7));
  CHECK(p.envelope.op == "sandbox.list");
  CHECK(p.envelope.members.contains("labels"));
  CHECK_FALSE(p.envelope.members.contains("op"));

  auto not_json = parse_envelope("{nope");
  REQUIRE(not_json.error);
  CHECK(not_json.error->code == ErrorCode::kBadJson);
  CHECK(not_json.envelope.id.is_null());
  CHECK(parse_envelope("[1, 2]").error->code == ErrorCode::kBadJson);
  CHECK(parse_envelope(R"({"op": "x"})").error->code == ErrorCode::kBadRequest);
  CHECK(parse_envelope(R"({"id": [], "op": "x"})").error->code == ErrorCode::kBadRequest);
  CHECK(parse_envelope(R"({"id": ")" + std::string(200, 'a') + R"(", "op": "x"})").error->code ==
        ErrorCode::kBadRequest);
  auto no_op = parse_envelope(R"({"id": "r1"})");
  REQUIRE(no_op.error);
  CHECK(no_op.envelope.id == json::value("r1"));  // the error still names the request
  CHECK(field_of(*no_op.error) == "op");
  // Deep nesting is refused by the parser's depth limit, not by the stack.
  CHECK(parse_envelope(std::string(10000, '[')).error->code == ErrorCode::kBadJson);
}

TEST_CASE("requests: sandbox.create checks every member's type and range") {
  auto ok = parse_create_sandbox(obj(
      R"({"image": "default", "cpus": 2, "memory_mib": 512, "env": {"A": "1"}, "labels": {"job": "42"},
          "lifetime_s": 60, "idle_timeout_s": 0, "egress": "allow-all"})"));
  REQUIRE(ok);
  CHECK(*ok->cpus == 2);
  CHECK(*ok->memory_mib == 512);
  CHECK(ok->env == std::vector<std::string>{"A=1"});
  CHECK(ok->labels.at("job") == "42");
  CHECK(*ok->lifetime_s == 60);
  CHECK(*ok->idle_timeout_s == 0);
  REQUIRE(ok->network);
  CHECK(ok->network->mode == sandboxd::net::EgressMode::kAllowAll);
  CHECK(ok->network->label() == "allow-all");
  auto defaults = parse_create_sandbox(obj("{}"));
  REQUIRE(defaults);
  CHECK_FALSE(defaults->cpus);
  CHECK_FALSE(defaults->key);
  auto keyed = parse_create_sandbox(obj(R"({"key": "job-42/attempt-1"})"));
  REQUIRE(keyed);
  CHECK(*keyed->key == "job-42/attempt-1");
  CHECK(field_of(parse_create_sandbox(obj(R"({"key": ""})")).error()) == "key");
  CHECK(field_of(parse_create_sandbox(obj(R"({"key": 7})")).error()) == "key");
  CHECK(field_of(parse_create_sandbox(obj(("{\"key\": \"" + std::string(129, 'k') + "\"}").c_str())).error()) == "key");

  CHECK(field_of(parse_create_sandbox(obj(R"({"cpus": "2"})")).error()) == "cpus");
  CHECK(field_of(parse_create_sandbox(obj(R"({"cpus": 0})")).error()) == "cpus");
  CHECK(field_of(parse_create_sandbox(obj(R"({"cpus": 1.5})")).error()) == "cpus");
  CHECK(field_of(parse_create_sandbox(obj(R"({"cpus": -1})")).error()) == "cpus");
  CHECK(field_of(parse_create_sandbox(obj(R"({"memory_mib": 1})")).error()) == "memory_mib");
  CHECK(field_of(parse_create_sandbox(obj(R"({"env": {"A=B": "x"}})")).error()) == "env");
  CHECK(field_of(parse_create_sandbox(obj(R"({"env": {"A": 1}})")).error()) == "env");
  CHECK(field_of(parse_create_sandbox(obj(R"({"labels": ["x"]})")).error()) == "labels");
  CHECK(field_of(parse_create_sandbox(obj(R"({"egress": "some"})")).error()) == "egress");
  std::string many = "{\"labels\": {";
  for (int i = 0; i < 33; ++i) many += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\": \"v\"";
  CHECK(field_of(parse_create_sandbox(obj((many + "}}").c_str())).error()) == "labels");
  // null is the same as absent.
  CHECK(parse_create_sandbox(obj(R"({"cpus": null})")));
}

TEST_CASE("requests: sandbox.create's network is rules or a mode, never both, with the bad member's path") {
  auto ruled = parse_create_sandbox(obj(R"({"network": {"rules": [{"host": "*.example.com", "verdict": "allow"}]}})"));
  REQUIRE(ruled);
  REQUIRE(ruled->network);
  CHECK_FALSE(ruled->network->mode);
  REQUIRE(ruled->network->rules.rules.size() == 1);
  CHECK(ruled->network->rules.rules[0].host->to_string() == "*.example.com");
  CHECK(ruled->network->label() == "policy");
  CHECK_FALSE(parse_create_sandbox(obj("{}"))->network);
  auto refused_at = [](const char* text) {
    auto r = parse_create_sandbox(obj(text));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kBadRequest);
    return field_of(r.error());
  };
  CHECK(refused_at(R"({"network": {"rules": []}, "egress": "allow-all"})") == "network");
  CHECK(refused_at(R"({"network": {"rules": [{"host": "a.example", "ports": [0], "verdict": "allow"}]}})") ==
        "network.rules[0].ports[0]");
  CHECK(refused_at(R"({"network": {"rules": [{"address": "10.0.0.1/8", "verdict": "allow"}]}})") ==
        "network.rules[0].address");
  CHECK(refused_at(R"({"network": "allow-all"})").rfind("network", 0) == 0);
  CHECK(refused_at(R"({"network": {"rules": [], "extra": 1}})").rfind("network", 0) == 0);
  CHECK(refused_at(R"({"egress": "allow-some"})") == "egress");
}

TEST_CASE("requests: sandbox.create's mounts: each type's members, files as text or base64, shape checks") {
  auto ok = parse_create_sandbox(obj(R"({"mounts": {
      "/workspace": {"type": "host", "path": "/srv/agents/42"},
      "/ref": {"type": "host", "path": "/srv/ref", "read_only": true},
      "/cfg": {"type": "memory", "size_mib": 8, "files": {
          "a.txt": "text\n", "bin/run": {"text": "#!/bin/sh\n", "mode": 493}, "b.bin": {"base64": "AAEC/w=="},
          "c": {"base64": "YQ=="}, "d": {"base64": ""}}}}})"));
  REQUIRE(ok);
  REQUIRE(ok->mounts.size() == 3);
  std::map<std::string, sandboxd::session::MountParams> by_path;
  for (const auto& m : ok->mounts) by_path[m.path] = m;
  CHECK(by_path["/workspace"].type == sandboxd::session::MountType::kHost);
  CHECK(by_path["/workspace"].host_path == "/srv/agents/42");
  CHECK_FALSE(by_path["/workspace"].read_only);
  CHECK(by_path["/ref"].read_only);
  const auto& cfg = by_path["/cfg"];
  CHECK(cfg.type == sandboxd::session::MountType::kMemory);
  CHECK(cfg.size_mib == 8);
  std::map<std::string, sandboxd::session::MountFileParams> files;
  for (const auto& f : cfg.files) files[f.path] = f;
  CHECK(files["a.txt"].contents == "text\n");
  CHECK(files["a.txt"].mode == 0644);
  CHECK(files["bin/run"].mode == 0755);
  CHECK(files["b.bin"].contents == std::string("\x00\x01\x02\xff", 4));
  CHECK(files["c"].contents == "a");
  CHECK(files["d"].contents.empty());

  CHECK(parse_create_sandbox(obj("{}"))->mounts.empty());
  const std::pair<const char*, const char*> refused[] = {
      {R"({"mounts": []})", "mounts"},
      {R"({"mounts": {"/w": "host"}})", "mounts./w"},
      {R"({"mounts": {"/w": {}}})", "mounts./w.type"},
      {R"({"mounts": {"/w": {"type": "nfs"}}})", "mounts./w.type"},
      {R"({"mounts": {"/w": {"type": "host"}}})", "mounts./w.path"},
      {R"({"mounts": {"/w": {"type": "host", "path": 7}}})", "mounts./w.path"},
      {R"({"mounts": {"/w": {"type": "host", "path": "/x", "files": {}}}})", "mounts./w"},
      {R"({"mounts": {"/w": {"type": "memory", "path": "/x"}}})", "mounts./w.path"},
      {R"({"mounts": {"/w": {"type": "memory", "colour": 1}}})", "mounts./w"},
      {R"({"mounts": {"/w": {"type": "memory", "read_only": "yes"}}})", "mounts./w.read_only"},
      {R"({"mounts": {"/w": {"type": "memory", "size_mib": 0}}})", "mounts./w.size_mib"},
      {R"({"mounts": {"/w": {"type": "memory", "size_mib": 4096}}})", "mounts./w.size_mib"},
      {R"({"mounts": {"/w": {"type": "memory", "files": []}}})", "mounts./w.files"},
      {R"({"mounts": {"/w": {"type": "memory", "files": {"a": 7}}}})", "mounts./w.files.a"},
      {R"({"mounts": {"/w": {"type": "memory", "files": {"a": {"text": "x", "base64": "eA=="}}}}})", "mounts./w.files.a"},
      {R"({"mounts": {"/w": {"type": "memory", "files": {"a": {}}}}})", "mounts./w.files.a"},
      {R"({"mounts": {"/w": {"type": "memory", "files": {"a": {"base64": "abc"}}}}})", "mounts./w.files.a"},
      {R"({"mounts": {"/w": {"type": "memory", "files": {"a": {"base64": "a*c="}}}}})", "mounts./w.files.a"},
      {R"({"mounts": {"/w": {"type": "memory", "files": {"a": {"text": "x", "mode": 4096}}}}})", "mounts./w.files.a"},
      {R"({"mounts": {"/w": {"type": "memory", "files": {"a": {"text": "x", "owner": 0}}}}})", "mounts./w.files.a"},
  };
  for (const auto& [text, field] : refused) {
    INFO(text);
    auto r = parse_create_sandbox(obj(text));
    REQUIRE_FALSE(r);
    CHECK(field_of(r.error()) == field);
  }
  std::string many = R"({"mounts": {)";
  for (int i = 0; i < 17; ++i) many += std::string(i ? "," : "") + "\"/m" + std::to_string(i) + R"(": {"type": "memory"})";
  many += "}}";
  auto too_many = parse_create_sandbox(obj(many.c_str()));
  REQUIRE_FALSE(too_many);
  CHECK(field_of(too_many.error()) == "mounts");
}

TEST_CASE("requests: exec.start takes argv or shell, never both, and a checked pty") {
  auto argv = parse_exec_start(obj(R"({"sandbox": "sb-1", "exec": "e.1_x-2", "argv": ["ls", "-l"], "stdin": true,
                                      "timeout_ms": 500, "cwd": "/tmp", "env": {"X": "y"}})"));
  REQUIRE(argv);
  CHECK(argv->exec_id == "e.1_x-2");
  CHECK(argv->argv == std::vector<std::string>{"ls", "-l"});
  CHECK(argv->stdin_open);
  CHECK(argv->timeout_ms == 500);
  CHECK_FALSE(argv->pty);
  auto shell = parse_exec_start(obj(R"({"sandbox": "sb-1", "shell": "echo hi", "pty": {"cols": 100, "rows": 30}})"));
  REQUIRE(shell);
  CHECK(shell->argv == std::vector<std::string>{"/bin/sh", "-c", "echo hi"});
  REQUIRE(shell->pty);
  CHECK(shell->pty->cols == 100);
  CHECK(shell->pty->rows == 30);
  CHECK(shell->pty->term == "xterm-256color");

  CHECK(field_of(parse_exec_start(obj(R"({"argv": ["ls"]})")).error()) == "sandbox");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s"})")).error()) == "argv");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s", "argv": ["ls"], "shell": "ls"})")).error()) == "argv");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s", "argv": []})")).error()) == "argv");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s", "argv": [""]})")).error()) == "argv");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s", "argv": ["a", 1]})")).error()) == "argv");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s", "argv": ["a"], "exec": "bad id"})")).error()) == "exec");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s", "argv": ["a"], "pty": {"cols": 0}})")).error()) ==
        "pty.cols");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s", "argv": ["a"], "pty": true})")).error()) == "pty");
  CHECK(field_of(parse_exec_start(obj(R"({"sandbox": "s", "argv": ["a"], "stdin": "yes"})")).error()) == "stdin");
}

TEST_CASE("requests: attach, resize and signal") {
  auto attach = parse_attach(obj(R"({"exec": "e1", "after_seq": 17, "read_only": true})"));
  REQUIRE(attach);
  CHECK(attach->after_seq == 17);
  CHECK(attach->read_only);
  CHECK(field_of(parse_attach(obj(R"({"exec": "e1", "after_seq": -1})")).error()) == "after_seq");
  auto resize = parse_resize(obj(R"({"exec": "e1", "cols": 120, "rows": 40})"));
  REQUIRE(resize);
  CHECK(resize->cols == 120);
  CHECK(field_of(parse_resize(obj(R"({"exec": "e1", "cols": 120})")).error()) == "rows");
  CHECK(field_of(parse_resize(obj(R"({"exec": "e1", "cols": 5000, "rows": 1})")).error()) == "cols");
  CHECK(parse_signal(obj(R"({"exec": "e1", "signal": "INT"})"))->signo == SIGINT);
  CHECK(parse_signal(obj(R"({"exec": "e1", "signal": "SIGTERM"})"))->signo == SIGTERM);
  CHECK(parse_signal(obj(R"({"exec": "e1", "signal": 9})"))->signo == 9);
  CHECK(field_of(parse_signal(obj(R"({"exec": "e1", "signal": 65})")).error()) == "signal");
  CHECK(field_of(parse_signal(obj(R"({"exec": "e1", "signal": "BOOM"})")).error()) == "signal");
  CHECK(field_of(parse_signal(obj(R"({"exec": "e1"})")).error()) == "signal");
  CHECK(*parse_hello_version(obj(R"({"protocol": 1})")) == 1);
  CHECK(field_of(parse_hello_version(obj("{}")).error()) == "protocol");
}
