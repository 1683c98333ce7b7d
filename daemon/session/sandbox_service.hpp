// Every sandbox and exec of the daemon, by owner: creates sandboxes from the
// pool, checks the per-token and per-sandbox limits, finds things for their
// owner only (another token's sandbox is "not found", never "forbidden"),
// and keeps finished execs readable until their retention runs out.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/api/requests.hpp"
#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/session/exec.hpp"
#include "daemon/session/sandbox.hpp"
#include "daemon/vm/vm_pool.hpp"

namespace sandboxd::session {

struct ServiceSettings {
  std::string default_image = "default";
  unsigned default_cpus = 1;
  unsigned default_memory_mib = 256;
  unsigned max_cpus = 4;
  unsigned max_memory_mib = 4096;
  unsigned max_sandboxes_per_token = 16;
  std::uint32_t default_lifetime_s = 3600;
  std::uint32_t default_idle_timeout_s = 600;
  std::string default_egress = "deny-all";
  std::size_t exec_log_bytes = 16u << 20;
  std::uint32_t exec_retention_s = 600;
  unsigned max_retained_execs = 1000;
  // Builds a sandbox's egress policy from its mode ("deny-all", "allow-all").
  std::function<Expected<net::EgressPolicy, std::string>(const std::string&)> make_policy;
};

class SandboxService {
 public:
  using SandboxPtr = std::shared_ptr<Sandbox>;
  using ExecPtr = std::shared_ptr<Exec>;

  SandboxService(boost::asio::io_context& io, vm::VmPool& pool, ServiceSettings settings);
  ~SandboxService();

  void create(const std::string& owner, const api::CreateSandboxParams& params,
              std::function<void(Expected<SandboxPtr, api::ApiError>)> done);
  std::vector<SandboxPtr> list(const std::string& owner, const api::Labels& filter) const;
  Expected<SandboxPtr, api::ApiError> find(const std::string& owner, const std::string& id) const;
  void destroy(const std::string& owner, const std::string& id,
               std::function<void(Expected<SandboxPtr, api::ApiError>)> done);

  struct Started {
    ExecPtr exec;
    bool existing = false;
  };
  Expected<Started, api::ApiError> start_exec(const std::string& owner, api::ExecStartParams params);
  Expected<ExecPtr, api::ApiError> find_exec(const std::string& owner, const std::string& exec_id) const;
  std::vector<ExecPtr> list_execs(const std::string& owner, const std::optional<std::string>& sandbox) const;

  // Refuses new sandboxes, destroys every live one (reason "shutdown"), stops
  // the pool; `done` runs when no VM is left.
  void shutdown(std::function<void()> done);
  bool shutting_down() const { return shutting_down_; }
  std::size_t sandbox_count() const { return sandboxes_.size(); }
  const ServiceSettings& settings() const { return settings_; }

 private:
  void forget_finished();
  void arm_retention_timer();
  std::string new_sandbox_id();
  std::string new_exec_id();
  static std::string exec_key(const std::string& owner, const std::string& exec_id) { return owner + '\n' + exec_id; }
  unsigned owned_by(const std::string& owner) const;

  boost::asio::io_context& io_;
  vm::VmPool& pool_;
  ServiceSettings settings_;
  std::map<std::string, SandboxPtr> sandboxes_;
  std::map<std::string, unsigned> creating_;  // per owner, creates waiting for a VM
  std::map<std::string, ExecPtr> execs_;      // by exec_key, running and retained
  boost::asio::steady_timer retention_timer_;
  bool shutting_down_ = false;
  std::uint64_t exec_counter_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sandboxd::session
