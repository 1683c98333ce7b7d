// A sandbox's network, running: the socket QEMU's virtio-net backend writes
// the guest's frames to, the stack those frames go through, and the egress
// side that carries the guest's flows to the world.
//
// The loop: read whatever the socket has (many frames at once), feed every
// frame to the stack, then process(): hand the stack's events to the egress
// side until it has no more, let the stack emit what is due, and write the
// outbound frames in one write. Egress completions (bytes from upstream, a
// connect that finished) kick() the same processing, coalesced through one
// posted call; a timer runs it at the stack's next deadline.
//
// Backpressure towards the guest: while more than kMaxPendingWrite bytes
// wait to be written to QEMU (the guest is not taking its frames), the link
// is not read — the guest's own transmissions then wait in QEMU.
//
// stop() (and the end of the socket) closes every flow's socket; a stopped
// network never touches the stack again. The network may be destroyed with
// host work still under way (a connect, a name the host is resolving): those
// completions hold the egress side only weakly and find it gone
// (egress_context.hpp). The one raw reference into this object, the kick
// callback the egress context holds, cannot outlive it: the context is
// owned by egress_, a member.
//
// A network starts unassigned, under the policy it was started with (for a
// pooled VM: deny-all, as nobody is known to be using it), and is handed to
// its sandbox with assign() (network_assignment.hpp).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "daemon/net/egress/egress.hpp"
#include "daemon/net/stack/net_stack.hpp"
#include "daemon/net/wire/stream_framing.hpp"

namespace sandboxd::net {

class SandboxNetwork : public std::enable_shared_from_this<SandboxNetwork> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  static constexpr std::size_t kMaxPendingWrite = 16 * 1024 * 1024;
  static constexpr std::size_t kReadChunk = 256 * 1024;

  // `resolver` answers the names the gateway's DNS resolves on the host;
  // null is the host's own resolver.
  static std::shared_ptr<SandboxNetwork> start(Socket link, const StackConfig& config, EgressPolicy policy,
                                               std::shared_ptr<HostResolver> resolver = nullptr);
  ~SandboxNetwork();

  void stop();
  // Hands the network to a sandbox: its identity, its egress policy for
  // flows opened from now on, and where its flows are reported.
  void assign(NetworkAssignment assignment) { egress_.assign(std::move(assignment)); }
  // Replaces the assigned policy for new flows (Egress::set_policy).
  void set_policy(EgressPolicy policy) { egress_.set_policy(std::move(policy)); }

  const NetCounters& counters() const { return stack_.counters(); }
  const EgressCounters& egress_counters() const { return egress_.counters(); }
  std::uint64_t oversized_frames() const { return decoder_.oversized_frames(); }
  // Everything above, as text for `run --net-stats`.
  std::string stats_text() const;

 private:
  SandboxNetwork(Socket link, const StackConfig& config, EgressPolicy policy, std::shared_ptr<HostResolver> resolver);
  void read_link();
  void kick();
  void process();
  void write_link();
  void arm_timer();

  Socket link_;
  NetStack stack_;
  Egress egress_;  // after stack_, which its context refers to
  wire::StreamFrameDecoder decoder_;
  boost::asio::steady_timer timer_;
  Bytes read_buffer_;
  Bytes writing_;         // the write under way
  Bytes pending_write_;   // taken from the stack, waiting for the write under way
  bool reading_ = false;
  bool process_posted_ = false;
  bool stopped_ = false;
  std::optional<Instant> timer_at_;
};

}  // namespace sandboxd::net
