// The TCP state machine of one guest-opened connection. The header says what
// it does and what it deliberately leaves out; the comments here say why a
// step is done the way it is.
//
// Sequence bookkeeping on the send side: our SYN is at iss_, data byte i of
// the stream at iss_ + 1 + i, and our FIN right after the last byte handed in
// by send(). The send buffer starts at buffer_seq_, which is snd_una_ once the
// SYN is acknowledged (and iss_ + 1 before), so the byte at sequence s is at
// offset s - buffer_seq_ in it.
#include "daemon/net/stack/tcp_connection.hpp"

#include <algorithm>

#include "daemon/net/stack/tcp_sequence.hpp"

namespace sandboxd::net {

namespace {

// RFC 9293 section 3.7.1: the MSS a peer that sends no MSS option accepts.
constexpr std::uint16_t kDefaultMss = 536;
// A guest announcing a tiny MSS would make us cut the send buffer into
// millions of segments per poll; below this we ignore what it says.
constexpr std::size_t kMinimumMss = 64;
// Clock granularity G of RFC 6298 (2.4): the least variance term of the RTO.
constexpr Clock::duration kClockGranularity = std::chrono::milliseconds(1);
constexpr std::uint32_t kMaxUnscaledWindow = 0xffff;

std::uint64_t mix(std::uint64_t x) {
  // splitmix64's finaliser: every input bit affects every output bit.
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Our ISN: a hash of the four-tuple, the guest's ISN and the time, so that a
// reused four-tuple gets a different ISN and an outsider cannot read ours off
// a counter. Nothing outside the VM sees these numbers; this is not RFC 6528's
// keyed hash, only "not trivially predictable".
std::uint32_t choose_isn(const TcpEndpoints& e, std::uint32_t irs, Instant now) {
  std::uint64_t h = mix((std::uint64_t{e.guest_ip.to_u32()} << 32) | e.remote_ip.to_u32());
  h = mix(h ^ ((std::uint64_t{e.guest_port} << 16) | e.remote_port) ^ (std::uint64_t{irs} << 32));
  h = mix(h ^ static_cast<std::uint64_t>(now.time_since_epoch().count()));
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

// The smallest shift that lets a 16-bit window field express `buffer` bytes.
std::uint8_t window_shift_for(std::size_t buffer) {
  std::uint8_t shift = 0;
  while (shift < wire::TcpOptions::kMaxWindowScale && (std::size_t{kMaxUnscaledWindow} << shift) < buffer) ++shift;
  return shift;
}

Clock::duration clamp_rto(Clock::duration rto, const TcpSettings& s) {
  return std::min<Clock::duration>(std::max<Clock::duration>(rto, s.min_rto), s.max_rto);
}

}  // namespace

TcpConnection::TcpConnection(const TcpEndpoints& endpoints, const wire::TcpRepr& syn, const TcpSettings& settings,
                             Instant now)
    : endpoints_(endpoints), settings_(settings) {
  irs_ = syn.seq_number;
  // Data or FIN on the SYN is not taken: the guest sends it again once
  // the connection is established.
  rcv_nxt_ = irs_ + 1;
  rcv_adv_ = rcv_nxt_;

  const std::size_t guest_mss = std::max<std::size_t>(syn.options.mss.value_or(kDefaultMss), kMinimumMss);
  send_mss_ = std::max<std::size_t>(std::min<std::size_t>(guest_mss, settings_.mss), 1);

  // RFC 7323: scaling is on only if both SYNs carry the option; we always
  // answer it when the guest offered it.
  if (syn.options.window_scale) {
    window_scaling_ = true;
    snd_shift_ = std::min(*syn.options.window_scale, wire::TcpOptions::kMaxWindowScale);
    rcv_shift_ = window_shift_for(settings_.receive_buffer);
  }
  // The window in a SYN is never scaled.
  snd_wnd_ = syn.window;
  max_snd_wnd_ = snd_wnd_;
  snd_wl1_ = irs_;

  iss_ = choose_isn(endpoints_, irs_, now);
  snd_una_ = snd_nxt_ = snd_max_ = iss_;
  buffer_seq_ = iss_ + 1;

  rto_ = std::min<Clock::duration>(settings_.initial_rto, settings_.max_rto);
  persist_interval_ = rto_;
}

// ---------------------------------------------------------------------------
// The egress side's calls.

void TcpConnection::accept(Instant) {
  if (state_ != State::kAwaitingAccept) return;
  state_ = State::kSynReceived;
  syn_ack_due_ = true;
}

void TcpConnection::refuse() {
  if (state_ != State::kAwaitingAccept) {
    // Too late to refuse politely: the guest already has our SYN-ACK.
    abort();
    return;
  }
  // RFC 9293 3.10.7.2: the answer to a SYN that has no ACK is
  // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  reset_due_ = PendingReset{0, rcv_nxt_};
  close("refused");
}

ByteSpan TcpConnection::readable() const { return receive_buffer_.view(); }

void TcpConnection::consume(std::size_t n) {
  receive_buffer_.consume(n);
  if (n > 0) consumed_since_ack_ = true;
}

bool TcpConnection::guest_finished() const { return guest_fin_; }

std::size_t TcpConnection::send_space() const {
  switch (state_) {
    case State::kAwaitingAccept:
    case State::kSynReceived:
    case State::kEstablished:
    case State::kCloseWait:
      break;
    default:
      return 0;
  }
  if (fin_queued_) return 0;
  return settings_.send_buffer > send_buffer_.size() ? settings_.send_buffer - send_buffer_.size() : 0;
}

std::size_t TcpConnection::send(ByteSpan data) {
  const std::size_t n = std::min(data.size(), send_space());
  send_buffer_.append(data.first(n));
  return n;
}

void TcpConnection::finish_sending() {
  if (fin_queued_ || closed()) return;
  switch (state_) {
    case State::kEstablished:
      state_ = State::kFinWait1;
      break;
    case State::kCloseWait:
      state_ = State::kLastAck;
      break;
    case State::kAwaitingAccept:
    case State::kSynReceived:
      // RFC 9293 3.10.4: queued, and acted on once the connection is
      // established (the state moves to FinWait1 then).
      break;
    default:
      return;
  }
  fin_queued_ = true;
}

void TcpConnection::abort() {
  switch (state_) {
    case State::kClosed:
      return;
    case State::kAwaitingAccept:
      reset_due_ = PendingReset{0, rcv_nxt_};
      close("aborted");
      return;
    case State::kTimeWait:
      // Both sides are done; a RST would only be noise.
      close("aborted");
      return;
    default:
      fail("aborted");
  }
}

// ---------------------------------------------------------------------------
// Segments from the guest, in the order of RFC 9293 3.10.7.4: sequence number
// (with RFC 5961's stricter rules for RST and SYN), ACK, then the text and FIN.

void TcpConnection::on_segment(const wire::TcpRepr& segment, Instant now) {
  switch (state_) {
    case State::kClosed:
      return;
    case State::kAwaitingAccept:
      // Nothing is answered until the egress decision. A repeated SYN and
      // early data are ignored; a RST right after the SYN means the guest gave up.
      if (segment.flags.rst && !segment.flags.syn && segment.seq_number == rcv_nxt_) close("reset by guest");
      return;
    case State::kTimeWait:
      on_segment_in_time_wait(segment, now);
      return;
    default:
      break;
  }

  if (segment.flags.rst) {
    on_reset(segment);
    return;
  }
  if (segment.flags.syn) {
    if (state_ == State::kSynReceived) {
      // The guest did not get our SYN-ACK and sent its SYN again.
      if (!segment.flags.ack && segment.seq_number == irs_) syn_ack_due_ = true;
      return;
    }
    // RFC 5961 section 4: a SYN on a synchronised connection gets a
    // challenge ACK whatever its sequence number; a guest that really
    // restarted answers it with a RST we accept.
    ack_pending_ = true;
    return;
  }
  if (!acceptable(segment)) {
    ack_pending_ = true;
    return;
  }
  if (!segment.flags.ack) return;
  if (!on_ack(segment, now)) {
    rearm_timer(now);
    return;
  }
  if (receiving()) on_text(segment, now);
  rearm_timer(now);
}

void TcpConnection::on_segment_in_time_wait(const wire::TcpRepr& segment, Instant now) {
  if (segment.flags.rst) {
    if (segment.seq_number == rcv_nxt_) close("reset by guest");
    return;
  }
  if (segment.flags.syn) {
    ack_pending_ = true;
    return;
  }
  if (segment.flags.fin) {
    // Our last ACK was lost and the guest sent its FIN again: ACK it, and
    // stay long enough to ACK another retransmission.
    ack_pending_ = true;
    time_wait_deadline_ = now + settings_.time_wait;
  }
}

void TcpConnection::on_reset(const wire::TcpRepr& segment) {
  const std::uint32_t seq = segment.seq_number;
  const bool in_window = seq_in_window(seq, rcv_nxt_, receive_window());
  if (state_ == State::kSynReceived) {
    if (in_window || seq == rcv_nxt_) close("reset by guest");
    return;
  }
  // RFC 5961 section 3: only a RST exactly at rcv_nxt is believed. One in
  // the window may be a blind guess, so the guest is asked (challenge ACK):
  // if it really reset, it answers with a RST at the right number.
  if (seq == rcv_nxt_) {
    close("reset by guest");
  } else if (in_window) {
    ack_pending_ = true;
  }
}

bool TcpConnection::acceptable(const wire::TcpRepr& segment) const {
  // RFC 9293 3.10.7.4's table, with one allowance: at a zero window a
  // segment exactly at rcv_nxt is accepted (its text is then trimmed to
  // nothing), so the ACKs and window updates on the guest's zero-window
  // probes are not lost.
  const std::uint32_t seq = segment.seq_number;
  const std::uint32_t length = segment.sequence_length();
  const std::uint32_t window = receive_window();
  if (seq == rcv_nxt_) return true;
  if (window == 0) return false;
  if (length == 0) return seq_in_window(seq, rcv_nxt_, window);
  return seq_in_window(seq, rcv_nxt_, window) || seq_in_window(seq + length - 1, rcv_nxt_, window);
}

bool TcpConnection::on_ack(const wire::TcpRepr& segment, Instant now) {
  const std::uint32_t ack = segment.ack_number;
  const std::uint32_t seq = segment.seq_number;
  const std::uint32_t window = static_cast<std::uint32_t>(segment.window) << snd_shift_;

  if (state_ == State::kSynReceived) {
    if (snd_max_ != iss_ + 1 || ack != iss_ + 1) return false;  // not for our SYN-ACK: dropped
    acknowledge(ack, now);
    state_ = fin_queued_ ? State::kFinWait1 : State::kEstablished;
    snd_wnd_ = window;
    max_snd_wnd_ = std::max(max_snd_wnd_, window);
    snd_wl1_ = seq;
    snd_wl2_ = ack;
    return true;
  }

  // RFC 9293: an ACK for something not yet sent is answered with an ACK and
  // dropped. RFC 5961 5.2: so is one older than any window the guest could
  // still be acknowledging.
  if (seq_gt(ack, snd_max_) || seq_lt(ack, snd_una_ - max_snd_wnd_)) {
    ack_pending_ = true;
    return false;
  }
  // Any acceptable ACK shows the guest is alive, whatever its window.
  unanswered_probes_ = 0;

  const std::uint32_t old_una = snd_una_;
  const std::uint32_t old_wnd = snd_wnd_;
  const bool progress = seq_gt(ack, snd_una_);
  if (progress) {
    acknowledge(ack, now);
    if (fin_acked()) {
      if (state_ == State::kFinWait1) {
        state_ = State::kFinWait2;
      } else if (state_ == State::kClosing) {
        enter_time_wait(now);
      } else if (state_ == State::kLastAck) {
        close("closed");
        return false;
      }
    }
  }

  // RFC 9293's SND.WL1/WL2 rule: take the window only from a segment no
  // older than the one it was last taken from, so a reordered old segment
  // cannot shrink it.
  if (seq_ge(ack, old_una) && (seq_lt(snd_wl1_, seq) || (snd_wl1_ == seq && seq_le(snd_wl2_, ack)))) {
    snd_wnd_ = window;
    max_snd_wnd_ = std::max(max_snd_wnd_, window);
    snd_wl1_ = seq;
    snd_wl2_ = ack;
    if (old_wnd == 0 && snd_wnd_ != 0) {
      // The window reopened. A zero-window probe beyond it may have been
      // discarded, so sending resumes at the first unacknowledged byte.
      snd_nxt_ = snd_una_;
      persist_interval_ = rto_;
    }
  }

  // RFC 5681's duplicate ACK: nothing new acknowledged, no text, no window
  // change, while data is outstanding (and not a zero-window probe's answer). The third one means a segment was
  // lost and the ones behind it arrived.
  if (!progress && ack == old_una && segment.payload.empty() && !segment.flags.fin && snd_wnd_ == old_wnd &&
      snd_wnd_ != 0 && seq_lt(snd_una_, snd_max_)) {
    if (++duplicate_acks_ == 3) {
      fast_retransmit_due_ = true;
      rtt_sample_.reset();  // Karn: what follows is a retransmission
    }
  }
  return true;
}

void TcpConnection::acknowledge(std::uint32_t ack, Instant now) {
  std::uint32_t acked = ack - snd_una_;
  if (snd_una_ == iss_ && acked > 0) --acked;  // our SYN
  const std::size_t data = std::min<std::size_t>(acked, send_buffer_.size());
  send_buffer_.consume(data);
  buffer_seq_ += static_cast<std::uint32_t>(data);
  snd_una_ = ack;
  if (seq_lt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;  // what we resent after an RTO had arrived already

  if (rtt_sample_ && seq_ge(ack, rtt_sample_->end)) {
    update_rtt(now - rtt_sample_->sent);
    rtt_sample_.reset();
  }
  consecutive_timeouts_ = 0;
  duplicate_acks_ = 0;
  // RFC 6298 5.3: new data acknowledged restarts the timer (rearm_timer()
  // sets it again if anything is still outstanding).
  timer_deadline_.reset();
}

void TcpConnection::update_rtt(Clock::duration sample) {
  // RFC 6298 section 2, with alpha = 1/8 and beta = 1/4.
  if (!srtt_) {
    srtt_ = sample;
    rttvar_ = sample / 2;
  } else {
    const Clock::duration error = *srtt_ > sample ? *srtt_ - sample : sample - *srtt_;
    rttvar_ = (3 * rttvar_ + error) / 4;
    srtt_ = (7 * *srtt_ + sample) / 8;
  }
  rto_ = clamp_rto(*srtt_ + std::max(kClockGranularity, 4 * rttvar_), settings_);
}

void TcpConnection::on_text(const wire::TcpRepr& segment, Instant now) {
  std::uint32_t seq = segment.seq_number;
  ByteSpan data = segment.payload;
  bool fin = segment.flags.fin;
  if (data.empty() && !fin) return;  // a pure ACK needs no answer
  ack_pending_ = true;

  if (seq_lt(seq, rcv_nxt_)) {
    // Starts with bytes we already have: keep only the new tail.
    const std::uint32_t old = rcv_nxt_ - seq;
    if (old > data.size()) {
      data = {};
      fin = false;  // that FIN was before rcv_nxt too
    } else {
      data = data.subspan(old);
    }
    seq = rcv_nxt_;
  }
  // Out of order: dropped (see the header); the ACK we send is a duplicate
  // that tells the guest where the gap starts.
  if (seq != rcv_nxt_) return;

  const std::size_t room = std::min<std::size_t>(receive_window(), receive_space());
  if (data.size() > room) {
    data = data.first(room);
    fin = false;  // the FIN is past what we took
  }
  receive_buffer_.append(data);
  rcv_nxt_ += static_cast<std::uint32_t>(data.size());

  if (!fin) return;
  rcv_nxt_ += 1;
  guest_fin_ = true;
  switch (state_) {
    case State::kEstablished:
      state_ = State::kCloseWait;
      break;
    case State::kFinWait1:
      // Had the same segment acknowledged our FIN, on_ack() would already
      // have moved us to FinWait2.
      state_ = State::kClosing;
      break;
    case State::kFinWait2:
      enter_time_wait(now);
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------
// Time.

void TcpConnection::on_timer_expired(Instant now) {
  timer_deadline_.reset();
  if (timer_mode_ == TimerMode::kPersist) {
    // A guest that answers probes keeps the connection alive however long
    // its window stays shut; one that answers nothing is given up on.
    if (unanswered_probes_ >= settings_.max_retransmissions) {
      fail("retransmission timeout");
      return;
    }
    ++unanswered_probes_;
    probe_due_ = true;
    persist_interval_ = std::min<Clock::duration>(2 * persist_interval_, settings_.max_rto);
    return;
  }
  if (consecutive_timeouts_ >= settings_.max_retransmissions) {
    fail("retransmission timeout");
    return;
  }
  ++consecutive_timeouts_;
  rto_ = std::min<Clock::duration>(2 * rto_, settings_.max_rto);  // RFC 6298 5.5
  rtt_sample_.reset();                                            // Karn's rule
  duplicate_acks_ = 0;
  fast_retransmit_due_ = false;
  if (state_ == State::kSynReceived) {
    syn_ack_due_ = true;
  } else {
    snd_nxt_ = snd_una_;  // go back N
  }
  (void)now;
}

void TcpConnection::rearm_timer(Instant now) {
  TimerMode mode = TimerMode::kNone;
  switch (state_) {
    case State::kAwaitingAccept:
    case State::kTimeWait:
    case State::kClosed:
      break;
    case State::kSynReceived:
      if (snd_max_ != snd_una_) mode = TimerMode::kRetransmit;
      break;
    default:
      if (snd_wnd_ == 0 && !send_buffer_.empty()) {
        mode = TimerMode::kPersist;
      } else if (snd_max_ != snd_una_) {
        mode = TimerMode::kRetransmit;
      }
  }
  if (mode != timer_mode_) {
    timer_deadline_.reset();
    if (mode == TimerMode::kPersist && timer_mode_ != TimerMode::kPersist) persist_interval_ = rto_;
    timer_mode_ = mode;
  }
  if (mode == TimerMode::kNone || timer_deadline_) return;
  timer_deadline_ = now + (mode == TimerMode::kPersist ? persist_interval_ : rto_);
}

void TcpConnection::enter_time_wait(Instant now) {
  state_ = State::kTimeWait;
  time_wait_deadline_ = now + settings_.time_wait;
  timer_mode_ = TimerMode::kNone;
  timer_deadline_.reset();
}

void TcpConnection::close(std::string_view reason) {
  state_ = State::kClosed;
  close_reason_ = reason;
  timer_mode_ = TimerMode::kNone;
  timer_deadline_.reset();
  time_wait_deadline_.reset();
  ack_pending_ = false;
}

void TcpConnection::fail(std::string_view reason) {
  // snd_max_ is where the guest most likely expects our next byte, and
  // only a RST exactly there is believed by an RFC 5961 peer.
  reset_due_ = PendingReset{snd_max_, rcv_nxt_};
  close(reason);
}

std::optional<Instant> TcpConnection::next_deadline() const {
  if (timer_deadline_ && time_wait_deadline_) return std::min(*timer_deadline_, *time_wait_deadline_);
  return timer_deadline_ ? timer_deadline_ : time_wait_deadline_;
}

// ---------------------------------------------------------------------------
// Output.

void TcpConnection::poll(Instant now, TcpSegmentSink& sink) {
  if (time_wait_deadline_ && *time_wait_deadline_ <= now) {
    close("closed");
  } else if (timer_deadline_ && *timer_deadline_ <= now && !closed()) {
    on_timer_expired(now);
  }
  if (reset_due_) {
    emit_reset(sink);
    reset_due_.reset();
  }
  switch (state_) {
    case State::kClosed:
    case State::kAwaitingAccept:
      return;
    case State::kSynReceived:
      if (syn_ack_due_) emit_syn_ack(now, sink);
      // Nothing but the SYN-ACK can be sent before the guest acknowledges it.
      ack_pending_ = false;
      rearm_timer(now);
      return;
    default:
      break;
  }
  if (transmitting()) transmit(now, sink);
  if (ack_pending_ || window_update_due()) emit_ack(sink);
  rearm_timer(now);
}

void TcpConnection::transmit(Instant now, TcpSegmentSink& sink) {
  if (fast_retransmit_due_) {
    fast_retransmit_due_ = false;
    if (seq_lt(snd_una_, snd_max_)) {
      // One segment from the oldest unacknowledged byte, of what was sent.
      const std::uint32_t sent_end = seq_lt(snd_max_, data_end()) ? snd_max_ : data_end();
      emit_data(snd_una_, std::min<std::size_t>(send_mss_, sent_end - snd_una_), now, sink);
    }
  }
  if (probe_due_) {
    probe_due_ = false;
    // One byte past the closed window (a retransmission if it was sent
    // before): the guest's ACK of it carries the window we wait for.
    if (!send_buffer_.empty()) emit_data(snd_una_, 1, now, sink);
  }
  for (;;) {
    const std::uint32_t end = data_end();
    if (seq_lt(snd_nxt_, end)) {
      const std::uint32_t right_edge = snd_una_ + snd_wnd_;
      const std::uint32_t usable = seq_gt(right_edge, snd_nxt_) ? right_edge - snd_nxt_ : 0;
      const std::size_t length = std::min<std::size_t>({send_mss_, end - snd_nxt_, usable});
      if (length == 0) break;  // window full: the guest's ACKs, or the persist timer, go on
      emit_data(snd_nxt_, length, now, sink);
    } else if (fin_queued_ && snd_nxt_ == end) {
      // A FIN alone takes no window: a receiver accepts it even at zero.
      emit_data(snd_nxt_, 0, now, sink);
    } else {
      break;
    }
  }
}

void TcpConnection::emit_data(std::uint32_t seq, std::size_t length, Instant now, TcpSegmentSink& sink) {
  wire::TcpRepr segment = make_segment(seq);
  segment.payload = send_buffer_.view(seq - buffer_seq_, length);
  const std::uint32_t payload_end = seq + static_cast<std::uint32_t>(segment.payload.size());
  segment.flags.fin = fin_queued_ && payload_end == data_end();
  segment.flags.psh = !segment.payload.empty() && payload_end == data_end();
  const std::uint32_t end = payload_end + (segment.flags.fin ? 1u : 0u);

  if (seq_lt(seq, snd_max_)) {
    ++retransmitted_segments_;
    rtt_sample_.reset();  // Karn: an ACK cannot tell which copy it answers
  } else if (!rtt_sample_) {
    rtt_sample_ = RttSample{end, now};
  }
  if (seq_gt(end, snd_nxt_)) snd_nxt_ = end;
  if (seq_gt(end, snd_max_)) snd_max_ = end;
  sink.emit(segment);
}

void TcpConnection::emit_syn_ack(Instant now, TcpSegmentSink& sink) {
  syn_ack_due_ = false;
  wire::TcpRepr segment;
  segment.src_port = endpoints_.remote_port;
  segment.dst_port = endpoints_.guest_port;
  segment.seq_number = iss_;
  segment.ack_number = rcv_nxt_;
  segment.flags.syn = true;
  segment.flags.ack = true;
  // The window of a SYN is never scaled (RFC 7323 2.2).
  const auto window = static_cast<std::uint16_t>(std::min<std::size_t>(receive_space(), kMaxUnscaledWindow));
  segment.window = window;
  if (seq_lt(rcv_adv_, rcv_nxt_ + window)) rcv_adv_ = rcv_nxt_ + window;
  segment.options.mss = settings_.mss;
  if (window_scaling_) segment.options.window_scale = rcv_shift_;

  if (snd_max_ != iss_) {
    ++retransmitted_segments_;
  } else {
    rtt_sample_ = RttSample{iss_ + 1, now};
  }
  snd_nxt_ = snd_max_ = iss_ + 1;
  sink.emit(segment);
}

void TcpConnection::emit_ack(TcpSegmentSink& sink) {
  // snd_max_, not snd_nxt_: after an RTO the guest may already hold bytes
  // we are about to resend, and an ACK below its rcv_nxt would be dropped.
  sink.emit(make_segment(snd_max_));
}

void TcpConnection::emit_reset(TcpSegmentSink& sink) {
  wire::TcpRepr segment;
  segment.src_port = endpoints_.remote_port;
  segment.dst_port = endpoints_.guest_port;
  segment.seq_number = reset_due_->seq;
  segment.ack_number = reset_due_->ack;
  segment.flags.rst = true;
  segment.flags.ack = true;
  sink.emit(segment);
}

wire::TcpRepr TcpConnection::make_segment(std::uint32_t seq) {
  wire::TcpRepr segment;
  segment.src_port = endpoints_.remote_port;
  segment.dst_port = endpoints_.guest_port;
  segment.seq_number = seq;
  segment.ack_number = rcv_nxt_;
  segment.flags.ack = true;

  // The right edge never moves left (RFC 9293 3.8.6.2.1): if the buffer
  // filled faster than the window closed, keep offering what we promised —
  // on_text() takes bytes up to rcv_adv_, and the buffer has room for them
  // because the promise was made from free space.
  std::uint32_t right_edge = rcv_nxt_ + advertisable_window();
  if (seq_lt(right_edge, rcv_adv_)) right_edge = rcv_adv_;
  const std::uint32_t window = seq_gt(right_edge, rcv_nxt_) ? right_edge - rcv_nxt_ : 0;
  // Rounded down to the scale; the unit lost to rounding stays ours to
  // accept since rcv_adv_ does not move back.
  const std::uint32_t field = std::min(window >> rcv_shift_, kMaxUnscaledWindow);
  segment.window = static_cast<std::uint16_t>(field);
  consumed_since_ack_ = false;
  const std::uint32_t advertised = rcv_nxt_ + (field << rcv_shift_);
  if (seq_gt(advertised, rcv_adv_)) rcv_adv_ = advertised;
  ack_pending_ = false;
  return segment;
}

// ---------------------------------------------------------------------------
// Windows and bookkeeping.

std::size_t TcpConnection::receive_space() const {
  return settings_.receive_buffer > receive_buffer_.size() ? settings_.receive_buffer - receive_buffer_.size() : 0;
}

std::uint32_t TcpConnection::receive_window() const { return seq_gt(rcv_adv_, rcv_nxt_) ? rcv_adv_ - rcv_nxt_ : 0; }

std::uint32_t TcpConnection::advertisable_window() const {
  const std::size_t largest = std::size_t{kMaxUnscaledWindow} << rcv_shift_;
  const auto window = static_cast<std::uint32_t>(std::min(receive_space(), largest));
  return (window >> rcv_shift_) << rcv_shift_;
}

bool TcpConnection::window_update_due() const {
  // A segment of its own only for a window the upstream opened by reading,
  // and only once it has at least doubled: while the guest still has window
  // it goes on sending, and our ACKs of that data carry the new window. So
  // the handshake is not followed by an update past the SYN-ACK's 64 KiB —
  // the guest's first data is acknowledged with the full window anyway,
  // and a short request/response connection costs one frame less.
  if (!receiving() || guest_fin_ || !consumed_since_ack_) return false;
  const std::uint32_t current = receive_window();
  const std::uint32_t possible = advertisable_window();
  if (possible <= current || possible / 2 < current) return false;
  // Receiver-side silly window avoidance (RFC 9293 3.8.6.2.2): announce an
  // opening only once it is worth a full segment or two (or half the
  // buffer, when the buffer is small); from zero, one segment suffices.
  const std::size_t half_buffer = settings_.receive_buffer / 2;
  const std::size_t segments = current == 0 ? settings_.mss : 2 * std::size_t{settings_.mss};
  const std::size_t threshold = std::max<std::size_t>(std::min(segments, half_buffer), 1);
  return possible - current >= threshold;
}

bool TcpConnection::receiving() const {
  return state_ == State::kEstablished || state_ == State::kFinWait1 || state_ == State::kFinWait2;
}

bool TcpConnection::transmitting() const {
  switch (state_) {
    case State::kEstablished:
    case State::kCloseWait:
    case State::kFinWait1:
    case State::kClosing:
    case State::kLastAck:
      return true;
    default:
      return false;
  }
}

std::uint32_t TcpConnection::data_end() const { return buffer_seq_ + static_cast<std::uint32_t>(send_buffer_.size()); }

bool TcpConnection::fin_acked() const { return fin_queued_ && seq_gt(snd_una_, data_end()); }

}  // namespace sandboxd::net
