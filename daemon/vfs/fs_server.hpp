// The daemon's end of one machine's "sandbox.fs" port: it mounts what a
// sandbox asked for in the guest and answers the guest bridge's FUSE
// requests from each mount's provider (provider.hpp).
//
// Threads: the port is read and written on the event loop; provider calls
// block (file I/O on the host), so they run on a worker pool, through one
// strand per mount so that a provider sees one call at a time and in the
// order the guest sent them. A worker's answer comes back to the loop to be
// written.
//
// Bounds, because the guest is hostile: at most kMaxInFlight requests are
// being answered at once and at most kMaxQueuedBytes of answers wait to be
// written or are being made (a read counts for what it asked for from the
// moment it is taken); beyond either the port is not read, so a guest that floods it or
// never reads its answers stops itself. A frame that does not decode is
// counted and dropped; a frame length the protocol cannot have means the
// stream is out of step: the mounts end (the guest's requests on them get
// nothing more) and what the port brings is read and dropped from then on,
// so no guest writer is left blocked on it. The daemon goes on.
//
// A bridge that starts again (a new Ready) has lost its mounts: each
// provider is reset and mounted anew.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "daemon/vfs/provider.hpp"
#include "protocol/fs_codec.hpp"

namespace sandboxd::vfs {

struct MountSpec {
  std::string path;  // absolute, in the guest
  std::shared_ptr<Provider> provider;
  bool read_only = false;
};

struct FsServerStats {
  std::uint64_t requests = 0;    // answered or being answered
  std::uint64_t bad_frames = 0;  // dropped because they did not decode
  std::uint32_t in_flight = 0;
  std::size_t queued_bytes = 0;  // answers waiting to be written
  std::size_t mounts = 0;
  bool broken = false;
};

class FsServer : public std::enable_shared_from_this<FsServer> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  using MountDone = std::function<void(Expected<void, std::string>)>;

  static constexpr std::uint32_t kMaxInFlight = protocol::fs::kMaxInFlight;
  static constexpr std::size_t kMaxQueuedBytes = 4u << 20;
  // How long a mount waits for the bridge to say Ready, and then for its
  // MountResult: the bridge starts with the guest, so under emulation it can
  // come after the control port's hello.
  static constexpr std::chrono::seconds kMountWait{30};

  // Starts reading `port` at once. `workers` runs provider calls.
  static std::shared_ptr<FsServer> start(Socket port, boost::asio::any_io_executor workers,
                                         std::chrono::milliseconds mount_wait = kMountWait);
  ~FsServer();
  FsServer(const FsServer&) = delete;
  FsServer& operator=(const FsServer&) = delete;

  // Mounts `spec` in the guest; `done` runs once, on the loop.
  void mount(MountSpec spec, MountDone done);
  // Closes the port: waiting mounts fail, answers still being made are dropped.
  void stop();

  FsServerStats stats() const;

 private:
  struct MountState;
  using Strand = boost::asio::strand<boost::asio::any_io_executor>;

  FsServer(Socket port, boost::asio::any_io_executor workers, std::chrono::milliseconds mount_wait);
  void read();
  void on_read(std::size_t n);
  void process_frames();
  bool paused() const;
  void on_frame(protocol::fs::Frame&& frame);
  void on_ready();
  void on_mount_result(const protocol::fs::MountResult& result);
  void on_request(protocol::fs::Request&& request);
  void on_forget(protocol::fs::Forget&& forget);
  void send(const protocol::fs::Frame& frame);
  void write_next();
  void send_mount(MountState& m);
  static void reset_provider(const std::shared_ptr<MountState>& m);
  void finish_mount(MountState& m, Expected<void, std::string> outcome);
  void arm_mount_timer();
  // The stream is out of step (see above).
  void fail(const std::string& why);

  Socket port_;
  boost::asio::any_io_executor workers_;
  std::chrono::milliseconds mount_wait_;
  boost::asio::steady_timer mount_timer_;
  std::array<std::byte, 64 * 1024> read_buffer_{};
  protocol::fs::FrameSplitter splitter_;
  bool reading_ = false;
  bool stopped_ = false;
  bool broken_ = false;  // out of step: read and dropped
  bool bridge_ready_ = false;
  std::deque<Bytes> write_queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  std::uint32_t in_flight_ = 0;
  std::size_t reserved_bytes_ = 0;  // the most the answers being made can take
  std::uint32_t next_mount_id_ = 1;
  std::map<std::uint32_t, std::shared_ptr<MountState>> mounts_;
  FsServerStats stats_;
  std::chrono::steady_clock::time_point last_bad_frame_log_{};
};

}  // namespace sandboxd::vfs
