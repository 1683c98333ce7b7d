#include "daemon/vfs/fs_server.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include <spdlog/spdlog.h>

#include "daemon/vfs/dispatch.hpp"

namespace sandboxd::vfs {

namespace asio = boost::asio;
namespace fs = protocol::fs;

struct FsServer::MountState {
  MountState(std::uint32_t mount_id, MountSpec mount_spec, asio::any_io_executor workers)
      : id(mount_id), spec(std::move(mount_spec)), strand(asio::make_strand(std::move(workers))) {}
  std::uint32_t id;
  MountSpec spec;
  Strand strand;
  MountDone done;  // set while a Mount waits for its result
  std::chrono::steady_clock::time_point deadline{};
  bool sent = false;     // the Mount frame went to this bridge
  bool mounted = false;  // the bridge said it is mounted
};

// The provider forgets the guest's node references and handles (releasing
// what it holds on the host) once its strand has run the calls queued before.
void FsServer::reset_provider(const std::shared_ptr<MountState>& m) {
  asio::post(m->strand, [m] { m->spec.provider->reset(); });
}

std::shared_ptr<FsServer> FsServer::start(Socket port, asio::any_io_executor workers,
                                          std::chrono::milliseconds mount_wait) {
  std::shared_ptr<FsServer> server(new FsServer(std::move(port), std::move(workers), mount_wait));
  server->read();
  return server;
}

FsServer::FsServer(Socket port, asio::any_io_executor workers, std::chrono::milliseconds mount_wait)
    : port_(std::move(port)), workers_(std::move(workers)), mount_wait_(mount_wait), mount_timer_(port_.get_executor()) {}

FsServer::~FsServer() { stop(); }

void FsServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  port_.close(ignored);
  mount_timer_.cancel();
  auto mounts = std::move(mounts_);
  mounts_.clear();
  for (auto& [id, m] : mounts) {
    if (auto done = std::move(m->done)) done(Unexpected{std::string("the machine ended before the mount was made")});
    reset_provider(m);
  }
}

FsServerStats FsServer::stats() const {
  FsServerStats s = stats_;
  s.in_flight = in_flight_;
  s.queued_bytes = queued_bytes_;
  s.mounts = mounts_.size();
  s.broken = broken_;
  return s;
}

void FsServer::mount(MountSpec spec, MountDone done) {
  if (stopped_ || broken_) {
    asio::post(port_.get_executor(), [done = std::move(done), why = std::string(stopped_ ? "the machine ended"
                                                                                          : "the mounts port failed")] {
      done(Unexpected{why});
    });
    return;
  }
  if (mounts_.size() >= fs::kMaxMounts) {
    asio::post(port_.get_executor(), [done = std::move(done)] {
      done(Unexpected{"at most " + std::to_string(fs::kMaxMounts) + " mounts per sandbox"});
    });
    return;
  }
  std::uint32_t id = next_mount_id_++;
  auto m = std::make_shared<MountState>(id, std::move(spec), workers_);
  m->done = std::move(done);
  m->deadline = std::chrono::steady_clock::now() + mount_wait_;
  mounts_[id] = m;
  if (bridge_ready_) send_mount(*m);
  arm_mount_timer();
}

void FsServer::send_mount(MountState& m) {
  m.sent = true;
  send(fs::Mount{m.id, m.spec.read_only, m.spec.path});
}

void FsServer::finish_mount(MountState& m, Expected<void, std::string> outcome) {
  if (outcome) m.mounted = true;
  if (auto done = std::move(m.done)) done(std::move(outcome));
}

void FsServer::arm_mount_timer() {
  auto earliest = std::chrono::steady_clock::time_point::max();
  for (auto& [id, m] : mounts_)
    if (m->done) earliest = std::min(earliest, m->deadline);
  if (earliest == std::chrono::steady_clock::time_point::max()) return;
  mount_timer_.expires_at(earliest);
  mount_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->stopped_) return;
    auto now = std::chrono::steady_clock::now();
    std::vector<std::uint32_t> expired;
    for (auto& [id, m] : self->mounts_)
      if (m->done && m->deadline <= now) expired.push_back(id);
    for (std::uint32_t id : expired) {
      auto m = self->mounts_[id];
      self->mounts_.erase(id);
      self->finish_mount(*m, Unexpected{std::string(self->bridge_ready_
                                                        ? "the guest did not answer the mount in time"
                                                        : "the guest's mount bridge did not start in time")});
    }
    self->arm_mount_timer();
  });
}

bool FsServer::paused() const {
  return in_flight_ >= kMaxInFlight || queued_bytes_ + reserved_bytes_ > kMaxQueuedBytes;
}

namespace {
// The most an answer to `request` can take on the wire: a read or readdir
// brings back up to what it asked for, the rest little.
std::size_t answer_bound(const fs::Request& request) {
  constexpr std::size_t kSmall = 4096;
  if (request.op == fs::Op::kRead || request.op == fs::Op::kReaddir) return kSmall + request.size;
  return kSmall;
}
}  // namespace

void FsServer::read() {
  if (stopped_ || reading_ || (!broken_ && paused())) return;
  reading_ = true;
  port_.async_read_some(asio::buffer(read_buffer_),
                        [weak = weak_from_this()](const boost::system::error_code& ec, std::size_t n) {
                          auto self = weak.lock();
                          if (!self || self->stopped_) return;
                          self->reading_ = false;
                          if (ec) {
                            if (ec != asio::error::eof) spdlog::debug("sandbox.fs port: {}", ec.message());
                            if (!self->broken_) spdlog::info("sandbox.fs: the guest's end of the port closed");
                            return self->stop();
                          }
                          if (self->broken_) return self->read();  // drained, unread
                          self->on_read(n);
                        });
}

void FsServer::on_read(std::size_t n) {
  splitter_.feed(ByteSpan(read_buffer_.data(), n));
  process_frames();
}

void FsServer::process_frames() {
  if (broken_) return;
  while (!stopped_ && !paused()) {
    auto body = splitter_.next();
    if (!body) break;
    auto frame = fs::decode_body(*body);
    if (!frame) {
      ++stats_.bad_frames;
      // One line a second at most: a guest sending garbage cannot fill the log.
      auto now = std::chrono::steady_clock::now();
      if (now - last_bad_frame_log_ >= std::chrono::seconds(1)) {
        last_bad_frame_log_ = now;
        spdlog::warn("sandbox.fs: dropped a frame from the guest ({}); {} so far", frame.error().reason,
                     stats_.bad_frames);
      }
      continue;
    }
    on_frame(std::move(*frame));
  }
  if (splitter_.failed()) return fail("the guest sent a frame length the mounts protocol cannot have");
  read();
}

void FsServer::on_frame(fs::Frame&& frame) {
  if (std::holds_alternative<fs::Ready>(frame)) return on_ready();
  if (auto* r = std::get_if<fs::MountResult>(&frame)) return on_mount_result(*r);
  if (auto* r = std::get_if<fs::Request>(&frame)) return on_request(std::move(*r));
  if (auto* f = std::get_if<fs::Forget>(&frame)) return on_forget(std::move(*f));
  // Host-bound frame types (Mount, Unmount, Reply) have no business here.
  ++stats_.bad_frames;
}

void FsServer::on_ready() {
  bool restarted = bridge_ready_;
  bridge_ready_ = true;
  for (auto& [id, m] : mounts_) {
    if (restarted && m->sent) {
      // The bridge lost every mount: the provider starts afresh and the
      // mount is made again.
      spdlog::info("sandbox.fs: the guest's bridge started again; mounting {} anew", m->spec.path);
      reset_provider(m);
    }
    send_mount(*m);
  }
}

void FsServer::on_mount_result(const fs::MountResult& result) {
  auto it = mounts_.find(result.mount_id);
  if (it == mounts_.end()) return;
  auto m = it->second;
  if (result.error == 0) return finish_mount(*m, {});
  std::string why = result.message.empty() ? std::string(std::strerror(result.error)) : result.message;
  spdlog::warn("sandbox.fs: the guest could not mount {}: {}", m->spec.path, why);
  m->mounted = false;
  if (m->done) mounts_.erase(it);  // a first mount that failed is no mount
  finish_mount(*m, Unexpected{std::move(why)});
}

void FsServer::on_request(fs::Request&& request) {
  auto it = mounts_.find(request.mount_id);
  if (it == mounts_.end() || !it->second->mounted) {
    ++stats_.requests;
    send(fs::Reply{request.unique, ENOENT, {}});
    return;
  }
  ++stats_.requests;
  ++in_flight_;
  // Counted as queued from now: answers being made are held to the same
  // bound as answers waiting to be written.
  std::size_t bound = answer_bound(request);
  reserved_bytes_ += bound;
  auto m = it->second;
  asio::post(m->strand, [m, request = std::move(request), loop = port_.get_executor(),
                         weak = weak_from_this(), bound]() mutable {
    fs::Reply reply = dispatch(*m->spec.provider, request, m->spec.read_only);
    asio::post(loop, [weak, reply = std::move(reply), bound]() mutable {
      auto self = weak.lock();
      if (!self || self->stopped_) return;
      --self->in_flight_;
      self->reserved_bytes_ -= bound;
      if (self->broken_) return;
      self->send(reply);
      self->process_frames();  // a request may have waited for this slot
    });
  });
}

void FsServer::on_forget(fs::Forget&& forget) {
  auto it = mounts_.find(forget.mount_id);
  if (it == mounts_.end()) return;
  auto m = it->second;
  asio::post(m->strand, [m, forget = std::move(forget)] { vfs::forget(*m->spec.provider, forget); });
}

void FsServer::send(const fs::Frame& frame) {
  if (stopped_) return;
  Bytes bytes = fs::encode(frame);
  queued_bytes_ += bytes.size();
  write_queue_.push_back(std::move(bytes));
  write_next();
}

void FsServer::write_next() {
  if (writing_ || write_queue_.empty() || stopped_) return;
  writing_ = true;
  asio::async_write(port_, asio::buffer(write_queue_.front()),
                    [weak = weak_from_this()](const boost::system::error_code& ec, std::size_t) {
                      auto self = weak.lock();
                      if (!self || self->stopped_) return;
                      self->writing_ = false;
                      if (ec) {
                        spdlog::warn("sandbox.fs: writing to the guest: {}", ec.message());
                        return self->stop();
                      }
                      self->queued_bytes_ -= self->write_queue_.front().size();
                      self->write_queue_.pop_front();
                      self->write_next();
                      self->process_frames();
                    });
}

void FsServer::fail(const std::string& why) {
  if (stopped_ || broken_) return;
  spdlog::warn("sandbox.fs: {}; the sandbox's mounts stop working", why);
  // The stream cannot be trusted to be in step again, so nothing more from
  // it is believed; it is still read (and dropped), so that a guest writing
  // to the port is never left blocked on it.
  broken_ = true;
  mount_timer_.cancel();
  auto mounts = std::move(mounts_);
  mounts_.clear();
  for (auto& [id, m] : mounts) {
    if (auto done = std::move(m->done)) done(Unexpected{"the mounts port failed: " + why});
    reset_provider(m);
  }
  read();
}

}  // namespace sandboxd::vfs
