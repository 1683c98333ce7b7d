#include "daemon/session/checkpoint.hpp"

#include <csignal>
#include <fstream>
#include <optional>

namespace sandboxd::session {

namespace {

// Run by /bin/sh as root in the guest. Its stdout is the layer and nothing
// else; what it says goes to stderr.
constexpr const char* kGuestScript = R"SH(set -u
upper=/run/sandbox/upper
[ -d "$upper" ] || { echo "this sandbox has no writable layer to checkpoint (its image is not layered)" >&2; exit 3; }
command -v mksquashfs >/dev/null || { echo "the image has no mksquashfs (squashfs-tools)" >&2; exit 3; }
out=$(mktemp /dev/shm/checkpoint.XXXXXX) || exit 4
trap 'kill -CONT -1 2>/dev/null; rm -f "$out"' EXIT
sync
# Every process but this shell and the agent stops while the layer is read.
kill -STOP -1 2>/dev/null
mksquashfs "$upper" "$out" -noappend -quiet -no-progress -xattrs -comp zstd -Xcompression-level 3 >&2 || exit 5
kill -CONT -1 2>/dev/null
cat "$out"
)SH";

constexpr std::size_t kStderrKept = 2048;

struct Job : std::enable_shared_from_this<Job> {
  std::weak_ptr<agent::GuestAgent> agent;
  std::uint32_t exec_id = 0;
  vm::GuestImage base;
  std::string name;
  std::string owner;
  CheckpointSettings settings;
  CheckpointDone done;
  std::filesystem::path incoming;
  std::shared_ptr<std::ofstream> out;  // written on the worker only
  std::uint64_t bytes = 0;
  std::string head;  // the stream's first bytes, for the magic
  std::string stderr_tail;
  std::optional<Error> failure;  // decided on the loop while the guest still runs

  ~Job() {
    if (!done) return;
    if (!incoming.empty()) settings.blocking->run([store = settings.store, dir = incoming, out = out] {
      if (out) out->close();
      store->abandon(dir);
    }, [] {});
    done(Unexpected{Error{ErrorCode::kUnavailable, "the sandbox's machine went away during the checkpoint"}});
  }

  void finish(Expected<vm::GuestImage, Error> result) {
    if (!done) return;
    auto callback = std::move(done);
    done = nullptr;
    callback(std::move(result));
  }

  // Throws the incoming directory away, then reports `error`.
  void fail(Error error) {
    auto self = shared_from_this();
    settings.blocking->run(
        [store = settings.store, dir = incoming, out = out] {
          if (out) out->close();
          if (!dir.empty()) store->abandon(dir);
        },
        [self, error = std::move(error)]() mutable { self->finish(Unexpected{std::move(error)}); });
  }

  std::string guest_said() const {
    std::string text = stderr_tail;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text.empty() ? "" : ": " + text;
  }

  void on_output(protocol::Stream stream, Bytes&& data) {
    auto live_agent = agent.lock();
    if (!live_agent) return;
    std::uint32_t n = static_cast<std::uint32_t>(data.size());
    if (stream == protocol::Stream::kStderr) {
      stderr_tail.append(reinterpret_cast<const char*>(data.data()), data.size());
      if (stderr_tail.size() > kStderrKept) stderr_tail.erase(0, stderr_tail.size() - kStderrKept);
      live_agent->ack_output(exec_id, n);
      return;
    }
    if (failure) {  // the guest is being killed; what it still sends is dropped
      live_agent->ack_output(exec_id, n);
      return;
    }
    while (head.size() < 4 && head.size() < bytes + data.size())
      head += static_cast<char>(data[head.size() - bytes]);
    bytes += data.size();
    if ((head.size() == 4 && !vm::looks_like_squashfs(head)) || bytes > kMaxCheckpointLayerBytes) {
      failure = Error{ErrorCode::kUnavailable, head.size() == 4 && !vm::looks_like_squashfs(head)
                                                   ? "the guest sent something that is not a squashfs"
                                                   : "the checkpoint's layer is bigger than " +
                                                         std::to_string(kMaxCheckpointLayerBytes >> 30) + " GiB"};
      live_agent->signal(exec_id, SIGKILL);
      live_agent->ack_output(exec_id, n);
      return;
    }
    // Acknowledged once on disk: the guest sends no faster than the disk takes.
    settings.blocking->run(
        [out = out, data = std::move(data)] {
          out->write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
        },
        [self = shared_from_this(), n] {
          if (auto a = self->agent.lock()) a->ack_output(self->exec_id, n);
        });
  }

  void on_exit(const protocol::Exit& exit) {
    if (failure) return fail(*failure);
    if (exit.kind != protocol::ExitKind::kExited || exit.status != 0) {
      std::string how = exit.kind == protocol::ExitKind::kExited ? "exit " + std::to_string(exit.status)
                                                                 : "killed (" + std::to_string(exit.status) + ")";
      if (!exit.message.empty()) how += ", " + exit.message;
      ErrorCode code = exit.status == 3 ? ErrorCode::kBadRequest : ErrorCode::kUnavailable;
      return fail(Error{code, "the checkpoint failed in the guest (" + how + ")" + guest_said()});
    }
    auto self = shared_from_this();
    settings.blocking->run(
        [self]() -> Expected<vm::GuestImage, std::string> {
          self->out->close();
          if (!*self->out) {
            self->settings.store->abandon(self->incoming);
            return Unexpected{std::string("writing the layer failed")};
          }
          return self->settings.store->commit(self->name, self->base, self->incoming, self->owner);
        },
        [self](Expected<vm::GuestImage, std::string> image) {
          if (!image) return self->finish(Unexpected{Error{ErrorCode::kUnavailable, "checkpoint: " + image.error()}});
          self->finish(std::move(*image));
        });
  }
};

}  // namespace

void run_checkpoint(const std::shared_ptr<agent::GuestAgent>& agent, const vm::GuestImage& base, const std::string& name,
                    const std::string& owner, const CheckpointSettings& settings, CheckpointDone done) {
  auto job = std::make_shared<Job>();
  job->agent = agent;
  job->base = base;
  job->name = name;
  job->owner = owner;
  job->settings = settings;
  job->done = std::move(done);
  settings.blocking->run(
      [store = settings.store]() -> Expected<std::pair<std::filesystem::path, std::shared_ptr<std::ofstream>>, std::string> {
        auto dir = store->begin();
        if (!dir) return Unexpected{dir.error()};
        auto out = std::make_shared<std::ofstream>(*dir / "layer.squashfs", std::ios::binary | std::ios::trunc);
        if (!*out) {
          store->abandon(*dir);
          return Unexpected{"cannot write in the image store " + store->root().string()};
        }
        return std::pair{*dir, out};
      },
      [job](Expected<std::pair<std::filesystem::path, std::shared_ptr<std::ofstream>>, std::string> opened) {
        if (!opened) return job->finish(Unexpected{Error{ErrorCode::kUnavailable, opened.error()}});
        job->incoming = opened->first;
        job->out = opened->second;
        auto live_agent = job->agent.lock();
        if (!live_agent || !live_agent->connected())
          return job->fail(Error{ErrorCode::kUnavailable, "the sandbox's machine is gone"});
        agent::ExecRequest request;
        request.argv = {"/bin/sh", "-c", kGuestScript};
        request.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
        request.cwd = "/";
        // The agent's exec holds the job: it lives until the exec has ended,
        // and if the machine goes away first the job's destructor reports it.
        agent::ExecObserver observer;
        observer.on_output = [job](protocol::Stream stream, Bytes&& data) { job->on_output(stream, std::move(data)); };
        observer.on_exit = [job](const protocol::Exit& exit) { job->on_exit(exit); };
        observer.on_failed = [job](const std::string& reason) {
          job->fail(Error{ErrorCode::kUnavailable, "the checkpoint did not run: " + reason});
        };
        observer.on_started = [](std::uint32_t) {};
        observer.on_stdin_credit = [] {};
        job->exec_id = live_agent->start_exec(request, std::move(observer));
      });
}

}  // namespace sandboxd::session
