// One TCP connection that the guest opened, terminated by the daemon.
//
// Theory of operation
// -------------------
// The guest believes it talks to a remote host; in truth this object plays
// that host. Bytes the guest sends are buffered here until the egress side
// (a host socket) takes them; bytes the egress side hands in are buffered here
// until the guest acknowledges them. Both buffers are bounded, and they are
// the flow control: the window advertised to the guest is the free space of
// the receive buffer (so a slow upstream slows the guest), and the egress side
// may only hand in as much as send_space() allows (so a slow guest slows the
// upstream socket, which stops being read).
//
// The object is pure: no sockets, no clock. Inputs (segments from the guest,
// data and closes from the egress side, the passing of time) only change
// state; poll() emits whatever is due then — data the guest's window allows,
// FIN, ACKs and window updates, retransmissions, a RST. The stack calls poll()
// once per batch of input, so ACKs are naturally coalesced per batch.
//
// The passive open is deferred: the guest's SYN creates the object in
// kAwaitingAccept and nothing is answered until the egress decision has been
// made and, if allowed, the upstream connection is established. accept()
// then answers SYN-ACK; refuse() answers RST (a fast "connection refused").
//
// Deliberately simple, and why:
// * Out-of-order segments are dropped and answered with a duplicate ACK. The
//   guest link is a local socket that does not reorder; losses are rare, and
//   the guest's fast retransmit repairs them.
// * SACK and timestamps are not negotiated (omitted from our SYN-ACK), so the
//   guest does not send them. MSS and window scaling are.
// * No congestion control: the only path is a local socket, the guest's
//   receive window is the limit. Retransmission is go-back-N from the oldest
//   unacknowledged byte on RTO (RFC 6298 estimator, Karn's rule, exponential
//   backoff), plus fast retransmit of one segment on the third duplicate ACK.
// * RST and SYN in a synchronised state follow RFC 5961: a RST is accepted
//   only at exactly rcv_nxt; otherwise (in window) a challenge ACK is sent.
// * TIME_WAIT is short (settings.time_wait), and a new SYN for a connection
//   in TIME_WAIT replaces it (the stack does that).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "daemon/net/stack/byte_queue.hpp"
#include "daemon/net/wire/address.hpp"
#include "daemon/net/wire/tcp.hpp"
#include "protocol/bytes.hpp"

namespace sandboxd::net {

using Clock = std::chrono::steady_clock;
using Instant = Clock::time_point;

struct TcpSettings {
  // The MSS we announce: the link MTU minus 40 (IPv4 and TCP headers).
  std::uint16_t mss = 1460;
  // Bytes from the guest held until the egress side consumes them. It bounds
  // the window we advertise; the window scale is derived from it.
  std::size_t receive_buffer = 1 << 20;
  // Bytes for the guest held until it acknowledges them (in flight + unsent).
  std::size_t send_buffer = 1 << 20;
  std::chrono::milliseconds initial_rto{1000};
  std::chrono::milliseconds min_rto{200};
  std::chrono::milliseconds max_rto{30000};
  // Consecutive RTOs without progress before the connection is reset.
  unsigned max_retransmissions = 10;
  std::chrono::milliseconds time_wait{2000};
};

// The four-tuple, from the guest's point of view.
struct TcpEndpoints {
  wire::Ipv4Address guest_ip;
  std::uint16_t guest_port = 0;
  wire::Ipv4Address remote_ip;
  std::uint16_t remote_port = 0;
};

// Receives the segments a connection emits. `segment.payload` points into the
// connection's buffers and is valid only during the call; the sink builds the
// IPv4 and Ethernet headers around it (remote_ip -> guest_ip).
class TcpSegmentSink {
 public:
  virtual void emit(const wire::TcpRepr& segment) = 0;

 protected:
  ~TcpSegmentSink() = default;
};

class TcpConnection {
 public:
  enum class State {
    kAwaitingAccept,  // guest SYN seen, egress decision or upstream connect pending
    kSynReceived,     // SYN-ACK sent
    kEstablished,
    kCloseWait,  // guest sent FIN; we may still send
    kLastAck,    // ... and we sent ours
    kFinWait1,   // we sent FIN first
    kFinWait2,   // ... and the guest acknowledged it
    kClosing,    // both sent FIN at once
    kTimeWait,
    kClosed,  // terminal: see close_reason()
  };

  // `syn` is the guest's opening segment (flags.syn set, no ack).
  TcpConnection(const TcpEndpoints& endpoints, const wire::TcpRepr& syn, const TcpSettings& settings, Instant now);

  // The egress decision. accept() queues the SYN-ACK; refuse() a RST.
  void accept(Instant now);
  void refuse();

  // A segment from the guest for this four-tuple (checksums already verified).
  void on_segment(const wire::TcpRepr& segment, Instant now);

  // Guest -> upstream: bytes received in order and not yet consumed.
  ByteSpan readable() const;
  // The egress side wrote `n` bytes of readable() upstream; the window opens.
  void consume(std::size_t n);
  // The guest sent FIN and every byte before it is in (or was consumed from) readable().
  bool guest_finished() const;

  // Upstream -> guest: how many bytes send() takes now.
  std::size_t send_space() const;
  // Appends up to send_space() bytes; returns how many were taken.
  std::size_t send(ByteSpan data);
  // The upstream finished: FIN after the last byte handed in.
  void finish_sending();
  // The upstream failed or was closed abruptly: RST now, kClosed.
  void abort();

  // Emits everything due at `now`: RST, SYN-ACK, data within the guest's
  // window, FIN, pending ACK or window update, retransmissions, probes.
  void poll(Instant now, TcpSegmentSink& sink);
  // When poll() must next be called even without new input (RTO, persist
  // timer, TIME_WAIT end); nullopt when nothing is scheduled.
  std::optional<Instant> next_deadline() const;

  State state() const { return state_; }
  bool closed() const { return state_ == State::kClosed; }
  // Why the connection ended ("closed", "reset by guest", "retransmission
  // timeout", "refused", "aborted"); empty while it is open. A string literal.
  std::string_view close_reason() const { return close_reason_; }
  const TcpEndpoints& endpoints() const { return endpoints_; }

  // Counters, for the stack's statistics.
  std::uint64_t retransmitted_segments() const { return retransmitted_segments_; }

 private:
  // Implementation-defined members follow.

  // What the one retransmission timer is doing: waiting for an ACK of data
  // in flight (RTO), or waiting to probe a zero window (persist).
  enum class TimerMode { kNone, kRetransmit, kPersist };

  // Input.
  void on_segment_in_time_wait(const wire::TcpRepr& segment, Instant now);
  void on_reset(const wire::TcpRepr& segment);
  bool acceptable(const wire::TcpRepr& segment) const;
  // Processes the ACK field; false when the rest of the segment must be dropped.
  bool on_ack(const wire::TcpRepr& segment, Instant now);
  void acknowledge(std::uint32_t ack, Instant now);
  void on_text(const wire::TcpRepr& segment, Instant now);
  void update_rtt(Clock::duration sample);

  // Time.
  void on_timer_expired(Instant now);
  void rearm_timer(Instant now);
  void enter_time_wait(Instant now);
  // Terminal transitions: fail() also queues a RST for the guest.
  void close(std::string_view reason);
  void fail(std::string_view reason);

  // Output.
  void transmit(Instant now, TcpSegmentSink& sink);
  void emit_syn_ack(Instant now, TcpSegmentSink& sink);
  void emit_data(std::uint32_t seq, std::size_t length, Instant now, TcpSegmentSink& sink);
  void emit_ack(TcpSegmentSink& sink);
  void emit_reset(TcpSegmentSink& sink);
  // A segment from us at `seq` carrying ACK, rcv_nxt and our window; records
  // the window as advertised and clears the pending ACK it satisfies.
  wire::TcpRepr make_segment(std::uint32_t seq);

  // Windows and sequence bookkeeping.
  std::size_t receive_space() const;
  std::uint32_t receive_window() const;
  std::uint32_t advertisable_window() const;
  bool window_update_due() const;
  bool receiving() const;
  bool transmitting() const;
  std::uint32_t data_end() const;
  bool fin_acked() const;

  TcpEndpoints endpoints_;
  TcpSettings settings_;
  State state_ = State::kAwaitingAccept;
  std::string_view close_reason_;
  std::uint64_t retransmitted_segments_ = 0;

  // Receive side (guest -> us). rcv_adv_ is the right edge of the window we
  // last advertised; it never moves left.
  std::uint32_t irs_ = 0;
  std::uint32_t rcv_nxt_ = 0;
  std::uint32_t rcv_adv_ = 0;
  std::uint8_t rcv_shift_ = 0;  // our window scale
  ByteQueue receive_buffer_;
  bool guest_fin_ = false;
  bool ack_pending_ = false;
  bool consumed_since_ack_ = false;  // the buffer drained since the last window we sent

  // Send side (us -> guest). The send buffer holds the bytes from
  // buffer_seq_ on: the unacknowledged ones, then the unsent ones. snd_nxt_
  // goes back to snd_una_ on RTO; snd_max_ is the highest ever sent.
  std::uint32_t iss_ = 0;
  std::uint32_t snd_una_ = 0;
  std::uint32_t snd_nxt_ = 0;
  std::uint32_t snd_max_ = 0;
  std::uint32_t buffer_seq_ = 0;
  std::uint32_t snd_wnd_ = 0;  // bytes, scaled
  std::uint32_t max_snd_wnd_ = 0;
  std::uint32_t snd_wl1_ = 0;
  std::uint32_t snd_wl2_ = 0;
  std::uint8_t snd_shift_ = 0;  // the guest's window scale
  bool window_scaling_ = false;
  std::size_t send_mss_ = 536;
  ByteQueue send_buffer_;
  bool fin_queued_ = false;
  bool syn_ack_due_ = false;
  bool fast_retransmit_due_ = false;
  bool probe_due_ = false;
  unsigned duplicate_acks_ = 0;

  // Pending RST (sent by the next poll, after the state became kClosed).
  struct PendingReset {
    std::uint32_t seq = 0;
    std::uint32_t ack = 0;
  };
  std::optional<PendingReset> reset_due_;

  // Retransmission timing (RFC 6298).
  TimerMode timer_mode_ = TimerMode::kNone;
  std::optional<Instant> timer_deadline_;
  Clock::duration rto_{};
  std::optional<Clock::duration> srtt_;
  Clock::duration rttvar_{};
  Clock::duration persist_interval_{};
  unsigned consecutive_timeouts_ = 0;
  unsigned unanswered_probes_ = 0;
  // The one RTT measurement in flight: the ACK of `end` timed from `sent`.
  struct RttSample {
    std::uint32_t end = 0;
    Instant sent;
  };
  std::optional<RttSample> rtt_sample_;

  std::optional<Instant> time_wait_deadline_;
};

}  // namespace sandboxd::net
