#include "daemon/session/sandbox_service.hpp"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>

namespace sandboxd::session {

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

SandboxService::SandboxService(boost::asio::io_context& io, vm::MachinePool& pool, ServiceConfig config,
                               const LogFormat& log_format, PolicyMaker make_policy)
    : io_(io),
      pool_(pool),
      config_(std::move(config)),
      log_format_(log_format),
      make_policy_(std::move(make_policy)),
      retention_timer_(io) {
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

unsigned SandboxService::active_sandboxes_of(const std::string& owner) const {
  unsigned n = 0;
  for (const auto& [id, s] : sandboxes_) n += s->owner() == owner && s->active();
  return n;
}

SandboxService::SandboxPtr SandboxService::find_by_key(const std::string& owner, const std::string& key) const {
  for (const auto& [id, s] : sandboxes_) {
    if (s->owner() == owner && s->active() && s->key() == key) return s;
  }
  return nullptr;
}

void SandboxService::create(const std::string& owner, const CreateSandboxParams& params,
                            std::function<void(Expected<Created, Error>)> done) {
  if (shutting_down_) return done(Unexpected{Error::shutting_down()});
  if (params.key) {
    if (auto existing = find_by_key(owner, *params.key)) {
      existing->when_ready([done = std::move(done)](Expected<SandboxPtr, Error> r) {
        if (!r) return done(Unexpected{r.error()});
        done(Created{*r, true});
      });
      return;
    }
  }
  SandboxSettings s;
  s.owner = owner;
  s.key = params.key;
  s.image = params.image.value_or(config_.default_image);
  s.cpus = params.cpus.value_or(config_.default_cpus);
  s.memory_mib = params.memory_mib.value_or(config_.default_memory_mib);
  if (s.cpus > config_.max_cpus) {
    return done(Unexpected{Error::limit_exceeded(
        "max_cpus", "cpus " + std::to_string(s.cpus) + " is above max_cpus " + std::to_string(config_.max_cpus))});
  }
  if (s.memory_mib > config_.max_memory_mib) {
    return done(Unexpected{Error::limit_exceeded("max_memory_mib", "memory_mib " + std::to_string(s.memory_mib) +
                                                                       " is above max_memory_mib " +
                                                                       std::to_string(config_.max_memory_mib))});
  }
  s.disk_backing = params.disk_backing.value_or(DiskBacking::kMemory);
  if (s.disk_backing == DiskBacking::kFile) {
    s.disk_mib = params.disk_mib.value_or(std::min(config_.default_file_disk_mib, config_.max_disk_mib));
    if (s.disk_mib > config_.max_disk_mib)
      return done(Unexpected{Error::limit_exceeded("max_disk_mib", "disk_mib " + std::to_string(s.disk_mib) +
                                                                       " is above max_disk_mib " +
                                                                       std::to_string(config_.max_disk_mib))});
  } else {
    s.disk_mib = params.disk_mib.value_or(0);
    if (s.disk_mib > s.memory_mib)
      return done(Unexpected{Error::bad_request(
          "disk_mib", "at most memory_mib (" + std::to_string(s.memory_mib) +
                          "): the writable layer is a tmpfs in the guest's memory (disk_backing \"file\" puts it on "
                          "the host's disk)")});
  }
  if (unsigned owned = active_sandboxes_of(owner); owned >= config_.max_sandboxes_per_token) {
    return done(Unexpected{Error::limit_exceeded(
        "max_sandboxes_per_token",
        "this token already owns " + std::to_string(owned) + " sandboxes (max_sandboxes_per_token)")});
  }
  s.env = params.env;
  s.labels = params.labels;
  s.lifetime_s = params.lifetime_s.value_or(config_.default_lifetime_s);
  s.idle_timeout_s = params.idle_timeout_s.value_or(config_.default_idle_timeout_s);
  if (params.network) s.network = *params.network;
  else if (config_.default_network) s.network = NetworkChoice{std::nullopt, *config_.default_network};
  else s.network = NetworkChoice{config_.default_egress, {}};
  s.exec_log_bytes = config_.exec_log_bytes;
  s.log_format = &log_format_;
  auto prepared = prepare_mounts(params.mounts, config_.allowed_host_roots);
  if (!prepared) return done(Unexpected{prepared.error()});
  s.mounts = prepared->shown;
  auto policy = make_policy_(s.network);
  if (!policy) return done(Unexpected{Error{ErrorCode::kInternal, "egress policy: " + policy.error()}});
  s.id = new_sandbox_id();

  vm::MachineShape shape{s.image, s.cpus, s.memory_mib};
  // A disk is made with its machine, so such a sandbox's machine is its own
  // (a pool only warms the shapes it is asked to keep).
  if (s.disk_backing == DiskBacking::kFile) shape.disk_file_mib = s.disk_mib;
  auto sandbox = std::make_shared<Sandbox>(io_, std::move(s));
  sandboxes_[sandbox->id()] = sandbox;
  sandbox->begin([this, alive = alive_](Sandbox& ended) {
    if (!*alive) return;
    spdlog::info("sandbox {} ended ({})", ended.id(), to_string(ended.state()));
    auto it = sandboxes_.find(ended.id());
    if (it == sandboxes_.end()) return;
    // Outlive the erase while the sandbox's own callbacks unwind.
    boost::asio::post(io_, [keep = it->second] {});
    sandboxes_.erase(it);
  });
  sandbox->when_ready([this, alive = alive_, mounts = std::move(prepared->specs),
                       done = std::move(done)](Expected<SandboxPtr, Error> r) mutable {
    if (!r) return done(Unexpected{r.error()});
    if (!*alive) return done(Unexpected{Error::shutting_down()});
    set_up(*r, std::move(mounts), std::move(done));
  });
  pool_.acquire(shape, [sandbox, policy = std::move(*policy)](Expected<vm::MachinePtr, std::string> machine,
                                                              bool from_pool) mutable {
    sandbox->machine_arrived(std::move(machine), from_pool, std::move(policy));
  });
}

std::vector<SandboxService::SandboxPtr> SandboxService::list(const std::string& owner, const Labels& filter) const {
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

Expected<SandboxService::SandboxPtr, Error> SandboxService::find(const std::string& owner, const std::string& id) const {
  auto it = sandboxes_.find(id);
  if (it == sandboxes_.end() || it->second->owner() != owner) return Unexpected{Error::not_found("sandbox " + id)};
  return it->second;
}

Expected<SandboxService::SandboxPtr, Error> SandboxService::set_network(const std::string& owner,
                                                                       const std::string& id, NetworkChoice choice) {
  auto sandbox = get(owner, id);
  if (!sandbox) return sandbox;
  auto policy = make_policy_(choice);
  if (!policy) return Unexpected{Error{ErrorCode::kInternal, "egress policy: " + policy.error()}};
  if (auto set = (*sandbox)->set_network(std::move(choice), std::move(*policy)); !set) return Unexpected{set.error()};
  return sandbox;
}

Expected<SandboxService::SandboxPtr, Error> SandboxService::get(const std::string& owner, const std::string& id) {
  auto sandbox = find(owner, id);
  if (sandbox) (*sandbox)->touch();
  return sandbox;
}

void SandboxService::checkpoint(const std::string& owner, const std::string& id, const std::string& name,
                                std::function<void(Expected<vm::GuestImage, Error>)> done) {
  if (shutting_down_) return done(Unexpected{Error::shutting_down()});
  if (!checkpoints_) return done(Unexpected{Error{ErrorCode::kUnavailable, "this daemon keeps no checkpoints"}});
  auto sandbox = get(owner, id);
  if (!sandbox) return done(Unexpected{sandbox.error()});
  auto s = *sandbox;
  if (!vm::valid_checkpoint_name(name))
    return done(Unexpected{Error::bad_request("image", "image: 1..64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")});
  auto agent = s->agent();
  if (!agent) {
    Error e{ErrorCode::kNotReady, "sandbox " + id + " is " + std::string(to_string(s->state()))};
    e.state = to_string(s->state());
    return done(Unexpected{std::move(e)});
  }
  if (checkpoints_in_progress_.count(name) || vm::find_guest_image(name, checkpoints_->image_roots))
    return done(Unexpected{Error::bad_request("image", "an image named '" + name + "' exists already")});
  auto base = vm::find_guest_image(s->info().image, checkpoints_->image_roots);
  if (!base) return done(Unexpected{Error{ErrorCode::kUnavailable, base.error()}});
  if (base->layers.empty())
    return done(Unexpected{Error::bad_request(
        "sandbox", "image '" + base->name + "' has no layers (an initramfs image): only layered images checkpoint")});
  checkpoints_in_progress_.insert(name);
  spdlog::info("sandbox {}: checkpoint as image {}", id, name);
  std::weak_ptr<bool> alive = alive_;
  run_checkpoint(agent, *base, name, owner, *checkpoints_,
                 [this, alive, id, name, done = std::move(done)](Expected<vm::GuestImage, Error> image) {
                   if (!alive.lock()) return;
                   checkpoints_in_progress_.erase(name);
                   if (image) spdlog::info("sandbox {}: image {} made", id, name);
                   else spdlog::warn("sandbox {}: checkpoint {} failed: {}", id, name, image.error().message);
                   done(std::move(image));
                 });
}

void SandboxService::set_up(const SandboxPtr& sandbox, std::vector<vfs::MountSpec> mounts,
                            std::function<void(Expected<Created, Error>)> done) {
  // Each step either goes on or ends the sandbox and answers with why.
  auto answer = [sandbox, done = std::move(done)](Expected<void, Error> outcome) mutable {
    if (!outcome) {
      spdlog::warn("sandbox {}: set-up failed: {}", sandbox->id(), outcome.error().message);
      return sandbox->destroy("destroyed", [done = std::move(done), error = outcome.error()] { done(Unexpected{error}); });
    }
    const SandboxInfo info = sandbox->info();
    spdlog::info("sandbox {} ready ({}, {} cpu, {} MiB{}{}){}", info.id, info.image, info.cpus, info.memory_mib,
                 info.disk_mib ? ", disk " + std::to_string(info.disk_mib) + " MiB" : std::string(),
                 info.mounts.empty() ? std::string() : ", " + std::to_string(info.mounts.size()) + " mounts",
                 info.from_pool ? " from the pool" : "");
    done(Created{sandbox, false});
  };
  auto mount = [alive = alive_, sandbox, mounts = std::move(mounts),
                answer = std::move(answer)](Expected<void, Error> sized) mutable {
    if (!sized || mounts.empty()) return answer(std::move(sized));
    if (!*alive) return answer(Unexpected{Error::shutting_down()});
    auto server = sandbox->mounts();
    if (!server) return answer(Unexpected{Error{ErrorCode::kUnavailable, "this machine cannot mount file systems"}});
    mount_all(server, std::move(mounts), std::move(answer));
  };
  // A file-backed layer has its size from birth; a tmpfs one is sized here.
  if (sandbox->info().disk_mib == 0 || sandbox->info().disk_backing == DiskBacking::kFile) return mount({});
  size_disk(sandbox, std::move(mount));
}

void SandboxService::size_disk(const SandboxPtr& sandbox, std::function<void(Expected<void, Error>)> sized) {
  auto target = file_target(sandbox->owner(), sandbox->id());
  if (!target) return sized(Unexpected{target.error()});
  FileOpParams params;
  params.kind = FileOpKind::kResize;
  params.path = kWritableLayerPath;
  params.size_mib = sandbox->info().disk_mib;
  run_file_op(target->agent, params, [sandbox, sized = std::move(sized)](Expected<FileOpResult, Error> result) {
    if (result) return sized({});
    sized(Unexpected{result.error().code == ErrorCode::kNotFound
                         ? Error::bad_request("disk_mib", "image '" + sandbox->info().image +
                                                              "' has no writable layer to size (not a layered image)")
                         : Error{ErrorCode::kUnavailable, "sizing the writable layer: " + result.error().message}});
  });
}

void SandboxService::describe(const std::string& owner, const std::string& id,
                              std::function<void(Expected<SandboxInfo, Error>)> done) {
  auto sandbox = get(owner, id);
  if (!sandbox) return done(Unexpected{sandbox.error()});
  auto s = *sandbox;
  auto target = file_target(owner, id);
  if (!target) return done(s->info());  // not ready, or an agent without the tool: no usage to tell
  FileOpParams params;
  params.kind = FileOpKind::kStatfs;
  params.path = "/";
  run_file_op(target->agent, params, [s, done = std::move(done)](Expected<FileOpResult, Error> measured) {
    SandboxInfo info = s->info();
    if (measured) info.disk = measured->disk;
    done(std::move(info));
  });
}

Expected<SandboxService::FileTarget, Error> SandboxService::file_target(const std::string& owner, const std::string& id) {
  if (shutting_down_) return Unexpected{Error::shutting_down()};
  auto sandbox = get(owner, id);
  if (!sandbox) return Unexpected{sandbox.error()};
  auto s = *sandbox;
  auto agent = s->agent();
  if (!agent) {
    Error e{ErrorCode::kNotReady, "sandbox " + id + " is " + std::string(to_string(s->state()))};
    e.state = to_string(s->state());
    return Unexpected{std::move(e)};
  }
  const auto& caps = agent->hello() ? agent->hello()->capabilities : std::vector<std::string>{};
  if (std::find(caps.begin(), caps.end(), "file") == caps.end())
    return Unexpected{Error{ErrorCode::kUnavailable, "the agent in sandbox " + id + " has no file tool"}};
  return FileTarget{s, agent};
}

void SandboxService::file_op(const std::string& owner, const std::string& id, const FileOpParams& params,
                             std::function<void(Expected<FileOpResult, Error>)> done) {
  auto target = file_target(owner, id);
  if (!target) return done(Unexpected{target.error()});
  run_file_op(target->agent, params,
              [busy = target->sandbox->busy_token(), done = std::move(done)](Expected<FileOpResult, Error> result) {
                done(std::move(result));
              });
}

Expected<std::shared_ptr<FileRead>, Error> SandboxService::read_file(const std::string& owner, const std::string& id,
                                                                     const std::string& path, const std::string& user,
                                                                     FileReadHandlers handlers) {
  auto target = file_target(owner, id);
  if (!target) return Unexpected{target.error()};
  return FileRead::start(target->agent, path, user, std::move(handlers), target->sandbox->busy_token());
}

Expected<std::shared_ptr<FileWrite>, Error> SandboxService::write_file(const std::string& owner, const std::string& id,
                                                                       const FileWriteParams& params,
                                                                       FileWriteHandlers handlers) {
  auto target = file_target(owner, id);
  if (!target) return Unexpected{target.error()};
  return FileWrite::start(target->agent, params, std::move(handlers), target->sandbox->busy_token());
}

void SandboxService::delete_image(const std::string& owner, const std::string& name,
                                  std::function<void(Expected<void, Error>)> done) {
  if (!checkpoints_) return done(Unexpected{Error{ErrorCode::kUnavailable, "this daemon keeps no checkpoints"}});
  checkpoints_->blocking->run([store = checkpoints_->store, owner, name] { return store->remove(name, owner); },
                              [name, done = std::move(done)](Expected<bool, std::string> removed) {
                                if (!removed) return done(Unexpected{Error{ErrorCode::kInternal, removed.error()}});
                                if (!*removed) return done(Unexpected{Error::not_found("image " + name)});
                                spdlog::info("image {} removed", name);
                                done({});
                              });
}

void SandboxService::destroy(const std::string& owner, const std::string& id,
                             std::function<void(Expected<SandboxPtr, Error>)> done) {
  auto sandbox = find(owner, id);
  if (!sandbox) return done(Unexpected{sandbox.error()});
  auto s = *sandbox;
  s->destroy("destroyed", [s, done = std::move(done)] { done(s); });
}

Expected<SandboxService::Started, Error> SandboxService::start_exec(const std::string& owner, ExecStartParams params) {
  if (shutting_down_) return Unexpected{Error::shutting_down()};
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

Expected<SandboxService::ExecPtr, Error> SandboxService::find_exec(const std::string& owner,
                                                                  const std::string& exec_id) const {
  auto it = execs_.find(exec_key(owner, exec_id));
  if (it == execs_.end()) return Unexpected{Error::not_found("exec " + exec_id)};
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
  auto retention = std::chrono::seconds(config_.exec_retention_s);
  std::map<std::string, std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>>> finished;
  for (auto it = execs_.begin(); it != execs_.end();) {
    const auto& e = it->second;
    if (e->state() == Exec::State::kExited && now - e->finished_at() >= retention) {
      it = execs_.erase(it);
      continue;
    }
    if (e->state() == Exec::State::kExited) finished[e->owner()].emplace_back(e->finished_at(), it->first);
    ++it;
  }
  for (auto& [owner, list] : finished) {
    if (list.size() <= config_.max_retained_execs) continue;
    std::sort(list.begin(), list.end());
    for (std::size_t i = 0; i + config_.max_retained_execs < list.size(); ++i) execs_.erase(list[i].second);
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
