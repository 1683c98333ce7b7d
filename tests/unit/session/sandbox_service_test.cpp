// The sandbox service over a fake pool: limits, ownership, create keys,
// booting sandboxes, exec ids, retention and shutdown.
#include <catch2/catch.hpp>

#include "daemon/session/sandbox_service.hpp"
#include "session_world.hpp"

using namespace sandboxd;
using namespace sandboxd::session;
using namespace sandboxd::testing;

namespace {

struct ServiceWorld : SessionWorld {
  FakePool pool{factory};
  ServiceConfig config;
  std::unique_ptr<SandboxService> service;

  explicit ServiceWorld(ServiceConfig c = {}) : config(c) {
    service = std::make_unique<SandboxService>(io, pool, config, format, [](const NetworkChoice& choice) {
      return net::EgressPolicy::make(choice.mode ? net::policy_for_mode(*choice.mode, {}) : choice.rules, {},
                                     net::wire::Ipv4Address{{10, 0, 2, 100}}, {});
    });
  }

  // Creates and waits for the answer.
  Expected<SandboxService::Created, Error> create(const std::string& owner, CreateSandboxParams params = {}) {
    std::optional<Expected<SandboxService::Created, Error>> answer;
    service->create(owner, params, [&](Expected<SandboxService::Created, Error> r) { answer = std::move(r); });
    REQUIRE(run([&] { return answer.has_value(); }));
    return std::move(*answer);
  }
};

CreateSandboxParams keyed(std::string key) {
  CreateSandboxParams p;
  p.key = std::move(key);
  return p;
}

}  // namespace

TEST_CASE("service: max_sandboxes_per_token counts booting sandboxes too, for each token on its own") {
  ServiceConfig c;
  c.max_sandboxes_per_token = 2;
  ServiceWorld w(c);
  w.factory.hold = true;
  int answered = 0;
  for (int i = 0; i < 2; ++i) w.service->create("a", {}, [&](auto) { ++answered; });
  // Both still boot; a third for the same token is over the limit at once.
  std::optional<Error> third;
  w.service->create("a", {}, [&](Expected<SandboxService::Created, Error> r) { third = r.error(); });
  REQUIRE(third);
  CHECK(third->code == ErrorCode::kLimitExceeded);
  CHECK(third->limit == "max_sandboxes_per_token");
  w.factory.release_held();
  REQUIRE(w.run([&] { return answered == 2; }));
  CHECK(w.create("b"));
  CHECK(w.create("a").error().limit == "max_sandboxes_per_token");
}

TEST_CASE("service: cpus or memory above the maxima are limit_exceeded, naming the limit") {
  ServiceWorld w;
  CreateSandboxParams cpus;
  cpus.cpus = w.config.max_cpus + 1;
  CHECK(w.create("a", cpus).error().limit == "max_cpus");
  CreateSandboxParams memory;
  memory.memory_mib = w.config.max_memory_mib + 1;
  CHECK(w.create("a", memory).error().limit == "max_memory_mib");
  CHECK(w.factory.asked.empty());
}

TEST_CASE("service: another owner's sandboxes and execs are not found, and not listed") {
  ServiceWorld w;
  auto mine = w.create("a")->sandbox;
  auto started = w.service->start_exec("a", exec_params({"sleep"}, mine->id()));
  REQUIRE(started);
  CHECK(w.service->find("b", mine->id()).error().code == ErrorCode::kNotFound);
  CHECK(w.service->find_exec("b", started->exec->id()).error().code == ErrorCode::kNotFound);
  CHECK(w.service->start_exec("b", exec_params({"true"}, mine->id())).error().code == ErrorCode::kNotFound);
  CHECK(w.service->list("b", {}).empty());
  CHECK(w.service->list_execs("b", std::nullopt).empty());
  CHECK(w.service->list("a", {}).size() == 1);
}

TEST_CASE("service: a create with the key of a sandbox that exists starts nothing and answers with that sandbox") {
  ServiceWorld w;
  w.factory.hold = true;
  std::vector<SandboxService::Created> answers;
  auto collect = [&](Expected<SandboxService::Created, Error> r) {
    REQUIRE(r);
    answers.push_back(*r);
  };
  w.service->create("a", keyed("job-1"), collect);
  w.service->create("a", keyed("job-1"), collect);  // the client retries while it boots
  auto listed = w.service->list("a", {});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]->state() == SandboxState::kBooting);
  CHECK(listed[0]->info().key == "job-1");
  w.factory.release_held();
  REQUIRE(w.run([&] { return answers.size() == 2; }));
  CHECK(answers[0].sandbox == answers[1].sandbox);
  CHECK(answers[0].existing != answers[1].existing);
  CHECK(w.factory.asked.size() == 1);
  // Once ready, the same key still answers with it; another owner's key is its own.
  auto again = w.create("a", keyed("job-1"));
  CHECK(again->existing);
  CHECK(again->sandbox == answers[0].sandbox);
  CHECK_FALSE(w.create("b", keyed("job-1"))->existing);
  // Once it has ended, the key may be used again.
  bool destroyed = false;
  w.service->destroy("a", again->sandbox->id(), [&](auto) { destroyed = true; });
  REQUIRE(w.run([&] { return destroyed; }));
  auto fresh = w.create("a", keyed("job-1"));
  CHECK_FALSE(fresh->existing);
  CHECK(fresh->sandbox != again->sandbox);
}

TEST_CASE("service: a booting sandbox can be destroyed; its create then fails and nothing is left") {
  ServiceWorld w;
  w.factory.hold = true;
  std::optional<Error> create_error;
  w.service->create("a", {}, [&](Expected<SandboxService::Created, Error> r) { create_error = r.error(); });
  auto booting = w.service->list("a", {});
  REQUIRE(booting.size() == 1);
  bool destroyed = false;
  w.service->destroy("a", booting[0]->id(), [&](Expected<std::shared_ptr<Sandbox>, Error> r) {
    REQUIRE(r);
    CHECK((*r)->state() == SandboxState::kExited);
    destroyed = true;
  });
  REQUIRE(w.run([&] { return destroyed && create_error.has_value(); }));
  CHECK(create_error->code == ErrorCode::kUnavailable);
  w.factory.release_held();
  REQUIRE(w.run([&] { return w.factory.ledger->stopped == 1; }));
  w.settle();
  CHECK(w.service->list("a", {}).empty());
  CHECK(w.factory.ledger->live == 0);
}

TEST_CASE("service: a failed boot fails the create with unavailable and the reason, and forgets the sandbox") {
  ServiceWorld w;
  w.factory.failing = "the guest agent did not answer within 20000 ms";
  auto r = w.create("a");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kUnavailable);
  CHECK(r.error().message.find("did not answer") != std::string::npos);
  w.settle();
  CHECK(w.service->sandbox_count() == 0);
}

TEST_CASE("service: a sandbox's network is its create's, else the daemon's rules, else its mode; set_network replaces it") {
  policy::NetworkPolicy daemon_rules;
  daemon_rules.rules.push_back(policy::Rule{.host = policy::HostPattern{policy::HostPattern::Kind::kExact, "pypi.org"},
                                            .verdict = policy::Verdict::kAllow});
  ServiceConfig c;
  c.default_egress = net::EgressMode::kAllowAll;
  {
    ServiceWorld w(c);
    auto moded = w.create("a")->sandbox;
    CHECK(moded->info().network.label() == "allow-all");
    CHECK(w.factory.ledger->assignments.back().policy.rules() == net::policy_for_mode(net::EgressMode::kAllowAll, {}));
  }
  c.default_network = daemon_rules;
  ServiceWorld w(c);
  auto ruled = w.create("a")->sandbox;
  CHECK(ruled->info().network.label() == "policy");
  CHECK(ruled->info().network.rules == daemon_rules);
  CHECK(w.factory.ledger->assignments.back().policy.rules() == daemon_rules);
  CreateSandboxParams own;
  own.network = NetworkChoice{net::EgressMode::kDenyAll, {}};
  auto asked = w.create("a", own)->sandbox;
  CHECK(asked->info().network.label() == "deny-all");

  auto replaced = w.service->set_network("a", ruled->id(), NetworkChoice{std::nullopt, {}});
  REQUIRE(replaced);
  CHECK(ruled->info().network.rules.rules.empty());
  REQUIRE(w.factory.ledger->replaced_policies.size() == 1);
  CHECK(w.factory.ledger->replaced_policies[0].rules().rules.empty());
  // Another owner's sandbox is not found; nothing changes.
  auto other = w.service->set_network("b", ruled->id(), NetworkChoice{net::EgressMode::kAllowAll, {}});
  REQUIRE_FALSE(other);
  CHECK(other.error().code == ErrorCode::kNotFound);
  CHECK(w.factory.ledger->replaced_policies.size() == 1);
}

TEST_CASE("service: a booting sandbox's network cannot be replaced yet") {
  ServiceWorld w;
  w.factory.hold = true;
  w.service->create("a", {}, [](Expected<SandboxService::Created, Error>) {});
  auto booting = w.service->list("a", {});
  REQUIRE(booting.size() == 1);
  auto r = w.service->set_network("a", booting[0]->id(), NetworkChoice{net::EgressMode::kAllowAll, {}});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kNotReady);
  CHECK(booting[0]->info().network.label() == "deny-all");
  w.factory.release_held();
  REQUIRE(w.run([&] { return booting[0]->live(); }));
}

TEST_CASE("service: get counts as activity for the idle timer, find does not") {
  ServiceConfig c;
  c.default_idle_timeout_s = 1;
  ServiceWorld w(c);
  auto looked_at = w.create("a")->sandbox;
  auto gotten = w.create("a")->sandbox;
  // For 1.6 s, one is only looked up and the other is asked about.
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1600);
  auto next_touch = std::chrono::steady_clock::now();
  w.run(
      [&] {
        auto now = std::chrono::steady_clock::now();
        if (now >= next_touch) {
          (void)w.service->find("a", looked_at->id());
          (void)w.service->get("a", gotten->id());
          next_touch = now + std::chrono::milliseconds(200);
        }
        return now >= until;
      },
      std::chrono::seconds(4));
  CHECK(looked_at->state() == SandboxState::kExited);
  CHECK(gotten->live());
}

TEST_CASE("service: exec ids are idempotent per owner: a repeated start runs nothing") {
  ServiceWorld w;
  auto sandbox = w.create("a")->sandbox;
  auto params = exec_params({"sleep"}, sandbox->id());
  params.exec_id = "build-1";
  auto first = w.service->start_exec("a", params);
  auto second = w.service->start_exec("a", params);
  REQUIRE(first);
  REQUIRE(second);
  CHECK_FALSE(first->existing);
  CHECK(second->existing);
  CHECK(first->exec == second->exec);
  w.settle();
  CHECK(w.factory.handed_out.back()->guest().starts.size() == 1);
  // The same id for another owner is another exec, in that owner's sandbox.
  auto other = w.create("b")->sandbox;
  auto other_params = params;
  other_params.sandbox = other->id();
  CHECK_FALSE(w.service->start_exec("b", other_params)->existing);
}

TEST_CASE("service: a finished exec stays readable after its sandbox is gone, until its retention runs out") {
  ServiceConfig c;
  c.exec_retention_s = 0;
  ServiceWorld w(c);
  auto sandbox = w.create("a")->sandbox;
  auto exec = w.service->start_exec("a", exec_params({"sleep"}, sandbox->id()))->exec;
  bool destroyed = false;
  w.service->destroy("a", sandbox->id(), [&](auto) { destroyed = true; });
  REQUIRE(w.run([&] { return destroyed; }));
  auto found = w.service->find_exec("a", exec->id());
  REQUIRE(found);
  CHECK((*found)->info().exit->reason == "sandbox_destroyed");
  w.service->forget_finished();
  CHECK(w.service->find_exec("a", exec->id()).error().code == ErrorCode::kNotFound);
}

TEST_CASE("service: beyond max_retained_execs the oldest finished execs of an owner are forgotten first") {
  ServiceConfig c;
  c.max_retained_execs = 2;
  ServiceWorld w(c);
  auto sandbox = w.create("a")->sandbox;
  std::vector<std::shared_ptr<Exec>> execs;
  for (int i = 0; i < 4; ++i) {
    auto exec = w.service->start_exec("a", exec_params({"exit", "0"}, sandbox->id()))->exec;
    REQUIRE(w.run([&] { return exec->state() == ExecState::kExited; }));
    execs.push_back(exec);
  }
  w.service->forget_finished();
  CHECK_FALSE(w.service->find_exec("a", execs[0]->id()));
  CHECK_FALSE(w.service->find_exec("a", execs[1]->id()));
  CHECK(w.service->find_exec("a", execs[2]->id()));
  CHECK(w.service->find_exec("a", execs[3]->id()));
}

TEST_CASE("service: shutdown destroys every sandbox with reason shutdown, stops the pool and refuses new work") {
  ServiceWorld w;
  auto sandbox = w.create("a")->sandbox;
  auto subscriber = std::make_shared<RecordingSink>();
  sandbox->subscribe(subscriber);
  auto exec = w.service->start_exec("a", exec_params({"sleep"}, sandbox->id()))->exec;
  w.factory.hold = true;
  std::optional<Error> booting_error;
  w.service->create("a", {}, [&](Expected<SandboxService::Created, Error> r) { booting_error = r.error(); });
  bool done = false;
  w.service->shutdown([&] { done = true; });
  REQUIRE(w.run([&] { return done; }));
  CHECK(w.pool.stopped);
  CHECK(subscriber->states.back().reason == "shutdown");
  CHECK(exec->info().exit->sandbox_reason == "shutdown");
  REQUIRE(booting_error);
  CHECK(booting_error->code == ErrorCode::kShuttingDown);
  CHECK(w.create("a").error().code == ErrorCode::kShuttingDown);
  CHECK(w.service->start_exec("a", exec_params({"true"}, sandbox->id())).error().code == ErrorCode::kShuttingDown);
}
