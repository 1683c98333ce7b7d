// Every sandbox and exec of the daemon, by owner: creates sandboxes with
// machines from the pool, checks the per-token and per-sandbox limits, finds
// things for their owner only (another token's sandbox is "not found", never
// "forbidden"), and keeps finished execs readable until their retention runs
// out.
//
// The domain layer of the daemon: requests come in as typed values
// (requests.hpp), answers go out as values and Errors (views.hpp,
// error.hpp); the API layer above translates both to and from its wire.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/session/checkpoint.hpp"
#include "daemon/session/error.hpp"
#include "daemon/session/exec.hpp"
#include "daemon/session/file_ops.hpp"
#include "daemon/session/file_transfer.hpp"
#include "daemon/session/requests.hpp"
#include "daemon/session/mounts.hpp"
#include "daemon/session/sandbox.hpp"
#include "daemon/session/service_config.hpp"
#include "daemon/vm/machine_pool.hpp"

namespace sandboxd::session {

class SandboxService {
 public:
  using SandboxPtr = std::shared_ptr<Sandbox>;
  using ExecPtr = std::shared_ptr<Exec>;
  // The egress policy a network choice stands for on this daemon (its host
  // aliases, its host's addresses).
  using PolicyMaker = std::function<Expected<net::EgressPolicy, std::string>(const NetworkChoice&)>;

  SandboxService(boost::asio::io_context& io, vm::MachinePool& pool, ServiceConfig config, const LogFormat& log_format,
                 PolicyMaker make_policy);
  ~SandboxService();

  struct Created {
    SandboxPtr sandbox;
    bool existing = false;  // the create's key named a sandbox that already existed
  };
  // Answers once the sandbox is ready, or with why it is not.
  void create(const std::string& owner, const CreateSandboxParams& params,
              std::function<void(Expected<Created, Error>)> done);
  std::vector<SandboxPtr> list(const std::string& owner, const Labels& filter) const;
  // sandbox.get: the sandbox as info() has it, and, when it is ready, the use
  // of its disk measured in the guest.
  void describe(const std::string& owner, const std::string& id,
                std::function<void(Expected<SandboxInfo, Error>)> done);
  // A lookup; it changes nothing.
  Expected<SandboxPtr, Error> find(const std::string& owner, const std::string& id) const;
  // A request about the sandbox: the lookup restarts its idle timer.
  Expected<SandboxPtr, Error> get(const std::string& owner, const std::string& id);
  // sandbox.set_network: new rules for a ready sandbox's new flows.
  Expected<SandboxPtr, Error> set_network(const std::string& owner, const std::string& id, NetworkChoice choice);
  // Answers once the sandbox has ended (its machine is gone).
  void destroy(const std::string& owner, const std::string& id, std::function<void(Expected<SandboxPtr, Error>)> done);

  struct Started {
    ExecPtr exec;
    bool existing = false;  // the exec id named an exec that already existed
  };
  Expected<Started, Error> start_exec(const std::string& owner, ExecStartParams params);
  Expected<ExecPtr, Error> find_exec(const std::string& owner, const std::string& exec_id) const;
  std::vector<ExecPtr> list_execs(const std::string& owner, const std::optional<std::string>& sandbox) const;

  // Files in a live sandbox (file_ops.hpp, file_transfer.hpp). An agent
  // without the file tool: unavailable.
  void file_op(const std::string& owner, const std::string& id, const FileOpParams& params,
               std::function<void(Expected<FileOpResult, Error>)> done);
  Expected<std::shared_ptr<FileRead>, Error> read_file(const std::string& owner, const std::string& id,
                                                       const std::string& path, const std::string& user,
                                                       FileReadHandlers handlers);
  Expected<std::shared_ptr<FileWrite>, Error> write_file(const std::string& owner, const std::string& id,
                                                         const FileWriteParams& params, FileWriteHandlers handlers);

  // Checkpoints (checkpoint.hpp) need an image store: without this call
  // sandbox.checkpoint answers unavailable.
  void enable_checkpoints(CheckpointSettings settings) { checkpoints_ = std::move(settings); }
  // Makes image `name` of what sandbox `id` has written; answers when it is
  // made (it can then be booted by name) or with why not.
  void checkpoint(const std::string& owner, const std::string& id, const std::string& name,
                  std::function<void(Expected<vm::GuestImage, Error>)> done);
  // Removes a checkpoint image `owner` made. Sandboxes booted from it keep
  // running; a layer's space is freed with the last image that uses it.
  void delete_image(const std::string& owner, const std::string& name, std::function<void(Expected<void, Error>)> done);

  // Refuses new work, destroys every sandbox (reason "shutdown"), stops the
  // pool; `done` runs when no machine is left.
  void shutdown(std::function<void()> done);
  bool shutting_down() const { return shutting_down_; }
  std::size_t sandbox_count() const { return sandboxes_.size(); }
  std::size_t retained_exec_count() const { return execs_.size(); }
  const ServiceConfig& config() const { return config_; }
  // Forgets finished execs whose retention ran out (also run every 30 s).
  void forget_finished();

 private:
  void arm_retention_timer();
  std::string new_sandbox_id();
  std::string new_exec_id();
  static std::string exec_key(const std::string& owner, const std::string& exec_id) { return owner + '\n' + exec_id; }
  unsigned active_sandboxes_of(const std::string& owner) const;
  struct FileTarget {
    SandboxPtr sandbox;
    std::shared_ptr<agent::GuestAgent> agent;
  };
  Expected<FileTarget, Error> file_target(const std::string& owner, const std::string& id);
  // Where the guest keeps its writable layer (guest/layered_root.hpp).
  static constexpr const char* kWritableLayerPath = "/run/sandbox/upper";
  // What a create does once its machine is up: sizes the writable layer to
  // disk_mib, mounts what it asked for, then answers. A step that fails
  // destroys the sandbox and answers with why.
  void set_up(const SandboxPtr& sandbox, std::vector<vfs::MountSpec> mounts,
              std::function<void(Expected<Created, Error>)> done);
  void size_disk(const SandboxPtr& sandbox, std::function<void(Expected<void, Error>)> sized);
  SandboxPtr find_by_key(const std::string& owner, const std::string& key) const;

  boost::asio::io_context& io_;
  vm::MachinePool& pool_;
  ServiceConfig config_;
  const LogFormat& log_format_;
  PolicyMaker make_policy_;
  std::map<std::string, SandboxPtr> sandboxes_;  // booting, live and stopping
  std::map<std::string, ExecPtr> execs_;         // by exec_key, running and retained
  boost::asio::steady_timer retention_timer_;
  bool shutting_down_ = false;
  std::uint64_t exec_counter_ = 0;
  std::optional<CheckpointSettings> checkpoints_;
  std::set<std::string> checkpoints_in_progress_;  // names being made
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sandboxd::session
