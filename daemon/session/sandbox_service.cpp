#include "daemon/session/sandbox_service.hpp"

#include <random>

#include <spdlog/spdlog.h>

namespace sandboxd::session {
using api::ApiError;
using api::ErrorCode;

namespace {
std::string random_hex(std::size_t chars) {
  static std::random_device device;
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < chars; ++i) out += digits[device() % 16];
  return out;
}
constexpr std::chrono::seconds kRetentionSweep{30};
}  // namespace

SandboxService::SandboxService(boost::asio::io_context& io, vm::VmPool& pool, ServiceSettings settings)
    : io_(io), pool_(pool), settings_(std::move(settings)), retention_timer_(io) {
  arm_retention_timer();
}

SandboxService::~SandboxService() { *alive_ = false; }

std::string SandboxService::new_sandbox_id() {
  std::string id;
  do id = "sb-" + random_hex(12);
  while (sandboxes_.count(id));
  return id;
}

std::string SandboxService::new_exec_id() { return "ex-" + random_hex(8) + "-" + std::to_string(++exec_counter_); }

unsigned SandboxService::owned_by(const std::string& owner) const {
  unsigned n = 0;
  for (const auto& [id, s] : sandboxes_) n += s->owner() == owner && s->live();
  auto it = creating_.find(owner);
  return n + (it == creating_.end() ? 0 : it->second);
}

void SandboxService::create(const std::string& owner, const api::CreateSandboxParams& params,
                            std::function<void(Expected<SandboxPtr, ApiError>)> done) {
  if (shutting_down_) return done(Unexpected{ApiError{ErrorCode::kShuttingDown, "the daemon is shutting down", {}}});
  SandboxSettings s;
  s.owner = owner;
  s.image = params.image.value_or(settings_.default_image);
  s.cpus = params.cpus.value_or(settings_.default_cpus);
  s.memory_mib = params.memory_mib.value_or(settings_.default_memory_mib);
  if (s.cpus > settings_.max_cpus)
    return done(Unexpected{ApiError::limit("max_cpus", "cpus " + std::to_string(s.cpus) + " is above max_cpus " +
                                                           std::to_string(settings_.max_cpus))});
  if (s.memory_mib > settings_.max_memory_mib)
    return done(Unexpected{ApiError::limit("max_memory_mib", "memory_mib " + std::to_string(s.memory_mib) +
                                                                 " is above max_memory_mib " +
                                                                 std::to_string(settings_.max_memory_mib))});
  if (owned_by(owner) >= settings_.max_sandboxes_per_token)
    return done(Unexpected{ApiError::limit("max_sandboxes_per_token",
                                           "this token already owns " + std::to_string(owned_by(owner)) +
                                               " sandboxes (max_sandboxes_per_token)")});
  s.env = params.env;
  s.labels = params.labels;
  s.lifetime_s = params.lifetime_s.value_or(settings_.default_lifetime_s);
  s.idle_timeout_s = params.idle_timeout_s.value_or(settings_.default_idle_timeout_s);
  s.egress = params.egress.value_or(settings_.default_egress);
  s.exec_log_bytes = settings_.exec_log_bytes;
  auto policy = settings_.make_policy(s.egress);
  if (!policy) return done(Unexpected{ApiError{ErrorCode::kInternal, "egress policy: " + policy.error(), {}}});

  ++creating_[owner];
  vm::PoolShape shape{s.image, s.cpus, s.memory_mib};  // before `s` is moved into the callback
  pool_.acquire(shape,
                [this, alive = alive_, s = std::move(s), policy = std::move(*policy), done = std::move(done)](
                    Expected<vm::WarmVm, std::string> machine, bool from_pool) mutable {
                  if (!*alive) return;
                  if (--creating_[s.owner] == 0) creating_.erase(s.owner);
                  if (!machine) return done(Unexpected{ApiError{ErrorCode::kUnavailable, "the sandbox did not start: " + machine.error(), {}}});
                  if (shutting_down_) {
                    machine->release(nullptr);
                    return done(Unexpected{ApiError{ErrorCode::kShuttingDown, "the daemon is shutting down", {}}});
                  }
                  s.id = new_sandbox_id();
                  if (machine->network) machine->network->assign({s.id, s.owner, std::move(policy), nullptr});
                  auto sandbox = std::make_shared<Sandbox>(io_, s, std::move(*machine), from_pool);
                  sandboxes_[s.id] = sandbox;
                  sandbox->begin([this, alive = alive_](Sandbox& ended) {
                    if (!*alive) return;
                    spdlog::info("sandbox {} ended ({})", ended.id(), to_string(ended.state()));
                    auto keep = sandboxes_[ended.id()];  // outlive the erase while its callbacks unwind
                    sandboxes_.erase(ended.id());
                    boost::asio::post(io_, [keep] {});
                  });
                  spdlog::info("sandbox {} ready ({}, {} cpu, {} MiB){}", s.id, s.image, s.cpus, s.memory_mib,
                               from_pool ? " from the pool" : "");
                  done(sandbox);
                });
}

std::vector<SandboxService::SandboxPtr> SandboxService::list(const std::string& owner, const api::Labels& filter) const {
  std::vector<SandboxPtr> out;
  for (const auto& [id, s] : sandboxes_) {
    if (s->owner() != owner) continue;
    bool match = true;
    for (const auto& [k, v] : filter) {
      auto it = s->labels().find(k);
      if (it == s->labels().end() || it->second != v) match = false;
    }
    if (match) out.push_back(s);
  }
  return out;
}

Expected<SandboxService::SandboxPtr, ApiError> SandboxService::find(const std::string& owner, const std::string& id) const {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end() || it->second->owner() != owner) return Unexpected{ApiError::not_found("sandbox " + id)};
  it->second->touch();
  return it->second;
}

void SandboxService::destroy(const std::string& owner, const std::string& id,
                             std::function<void(Expected<SandboxPtr, ApiError>)> done) {
  auto sandbox = find(owner, id);
  if (!sandbox) return done(Unexpected{sandbox.error()});
  auto s = *sandbox;
  s->destroy("destroyed", [s, done = std::move(done)] { done(s); });
}

Expected<SandboxService::Started, ApiError> SandboxService::start_exec(const std::string& owner,
                                                                       api::ExecStartParams params) {
  if (!params.exec_id.empty()) {
    auto it = execs_.find(exec_key(owner, params.exec_id));
    if (it != execs_.end()) return Started{it->second, true};
  }
  auto sandbox = find(owner, params.sandbox);
  if (!sandbox) return Unexpected{sandbox.error()};
  std::string id = params.exec_id.empty() ? new_exec_id() : params.exec_id;
  auto exec = (*sandbox)->start_exec(params, id);
  if (!exec) return Unexpected{exec.error()};
  execs_[exec_key(owner, id)] = *exec;
  return Started{*exec, false};
}

Expected<SandboxService::ExecPtr, ApiError> SandboxService::find_exec(const std::string& owner,
                                                                     const std::string& exec_id) const {
  auto it = execs_.find(exec_key(owner, exec_id));
  if (it == execs_.end()) return Unexpected{ApiError::not_found("exec " + exec_id)};
  return it->second;
}

std::vector<SandboxService::ExecPtr> SandboxService::list_execs(const std::string& owner,
                                                                const std::optional<std::string>& sandbox) const {
  std::vector<ExecPtr> out;
  for (const auto& [key, e] : execs_) {
    if (e->owner() == owner && (!sandbox || e->sandbox_id() == *sandbox)) out.push_back(e);
  }
  return out;
}

void SandboxService::arm_retention_timer() {
  retention_timer_.expires_after(kRetentionSweep);
  retention_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive) return;
    forget_finished();
    arm_retention_timer();
  });
}

void SandboxService::forget_finished() {
  auto now = std::chrono::steady_clock::now();
  auto retention = std::chrono::seconds(settings_.exec_retention_s);
  std::map<std::string, std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>>> finished;
  for (auto it = execs_.begin(); it != execs_.end();) {
    const auto& e = it->second;
    if (e->state() == Exec::State::kExited && now - e->finished_at() > retention) {
      it = execs_.erase(it);
      continue;
    }
    if (e->state() == Exec::State::kExited) finished[e->owner()].emplace_back(e->finished_at(), it->first);
    ++it;
  }
  for (auto& [owner, list] : finished) {
    if (list.size() <= settings_.max_retained_execs) continue;
    std::sort(list.begin(), list.end());
    for (std::size_t i = 0; i + settings_.max_retained_execs < list.size(); ++i) execs_.erase(list[i].second);
  }
}

void SandboxService::shutdown(std::function<void()> done) {
  shutting_down_ = true;
  retention_timer_.cancel();
  auto remaining = std::make_shared<std::size_t>(sandboxes_.size() + 1);
  auto finish_one = [this, remaining, done = std::move(done)]() mutable {
    if (--*remaining > 0) return;
    pool_.stop(std::move(done));
  };
  auto sandboxes = sandboxes_;
  for (auto& [id, s] : sandboxes) s->destroy("shutdown", finish_one);
  finish_one();
}

}  // namespace sandboxd::session
