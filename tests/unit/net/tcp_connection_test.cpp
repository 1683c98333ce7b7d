// The TCP state machine driven by hand: a simulated clock, segments written
// as the guest would send them, and a sink that records what the connection
// emits. Our ISN is read from the SYN-ACK, never assumed.
#include "daemon/net/stack/tcp_connection.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "daemon/net/stack/byte_queue.hpp"
#include "daemon/net/stack/tcp_sequence.hpp"

using namespace std::chrono_literals;
using sandboxd::Bytes;
using sandboxd::ByteSpan;
using sandboxd::net::ByteQueue;
using sandboxd::net::Instant;
using sandboxd::net::TcpConnection;
using sandboxd::net::TcpEndpoints;
using sandboxd::net::TcpSegmentSink;
using sandboxd::net::TcpSettings;
namespace wire = sandboxd::net::wire;
using State = TcpConnection::State;

namespace {

// A segment the connection emitted, with its payload copied out (the span
// it came with points into the connection's buffer).
struct Sent {
  wire::TcpRepr segment;
  Bytes payload;

  std::uint32_t seq() const { return segment.seq_number; }
  std::uint32_t ack() const { return segment.ack_number; }
  std::uint32_t end() const {
    return seq() + static_cast<std::uint32_t>(payload.size()) + (segment.flags.syn ? 1u : 0u) +
           (segment.flags.fin ? 1u : 0u);
  }
  bool is_pure_ack() const {
    const auto& f = segment.flags;
    return f.ack && !f.syn && !f.fin && !f.rst && payload.empty();
  }
};

class Recorder final : public TcpSegmentSink {
 public:
  void emit(const wire::TcpRepr& segment) override {
    Sent sent{segment, Bytes(segment.payload.begin(), segment.payload.end())};
    sent.segment.payload = {};
    out.push_back(std::move(sent));
  }
  std::vector<Sent> out;
};

Bytes pattern(std::size_t n, std::uint32_t seed) {
  Bytes out(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x);
  }
  return out;
}

std::size_t payload_bytes(const std::vector<Sent>& segments) {
  std::size_t n = 0;
  for (const auto& s : segments) n += s.payload.size();
  return n;
}

// One connection and the guest's side of it, reduced to the numbers a test needs.
struct Harness {
  TcpSettings settings;
  TcpEndpoints endpoints{wire::Ipv4Address{{10, 0, 2, 15}}, 40000, wire::Ipv4Address{{93, 184, 216, 34}}, 443};
  Instant now = Instant{} + 1h;
  std::optional<TcpConnection> conn;

  // The guest.
  std::uint32_t guest_iss = 1'000'000;
  std::optional<std::uint8_t> guest_scale = 7;
  std::optional<std::uint16_t> guest_mss = 1460;
  std::uint16_t guest_window = 0xffff;  // the field it sends
  std::uint32_t guest_nxt = 0;          // its next sequence number
  std::uint32_t guest_rcv = 0;          // the next byte it expects from us
  Bytes guest_received;                 // our data, in order, as the guest got it

  std::uint32_t iss = 0;  // ours, from the SYN-ACK

  TcpConnection& c() { return *conn; }

  wire::TcpRepr syn() const {
    wire::TcpRepr s;
    s.src_port = endpoints.guest_port;
    s.dst_port = endpoints.remote_port;
    s.seq_number = guest_iss;
    s.flags.syn = true;
    s.window = 64240;
    s.options.mss = guest_mss;
    s.options.window_scale = guest_scale;
    s.options.sack_permitted = true;
    s.options.timestamps = wire::TcpTimestamps{12345, 0};
    return s;
  }
  void open() {
    conn.emplace(endpoints, syn(), settings, now);
    guest_nxt = guest_iss + 1;
  }
  std::vector<Sent> poll() {
    Recorder r;
    conn->poll(now, r);
    return r.out;
  }
  Sent accept() {
    conn->accept(now);
    auto out = poll();
    REQUIRE(out.size() == 1);
    iss = out[0].seq();
    guest_rcv = iss + 1;
    return out[0];
  }
  // Handshake; no window update follows it (the SYN-ACK's window of at
  // most 64 KiB grows with the ACK of the guest's first data).
  void establish() {
    open();
    accept();
    ack();
    REQUIRE(c().state() == State::kEstablished);
    REQUIRE(poll().empty());
  }

  wire::TcpRepr from_guest(ByteSpan payload = {}) const {
    wire::TcpRepr s;
    s.src_port = endpoints.guest_port;
    s.dst_port = endpoints.remote_port;
    s.seq_number = guest_nxt;
    s.ack_number = guest_rcv;
    s.flags.ack = true;
    s.window = guest_window;
    s.payload = payload;
    return s;
  }
  void deliver(const wire::TcpRepr& s) { conn->on_segment(s, now); }
  void ack() { deliver(from_guest()); }
  void guest_sends(ByteSpan data, bool fin = false) {
    auto s = from_guest(data);
    s.flags.fin = fin;
    deliver(s);
    guest_nxt += static_cast<std::uint32_t>(data.size()) + (fin ? 1u : 0u);
  }
  void guest_fin() { guest_sends({}, true); }
  // The guest takes in-order segments (and counts our FIN); it acknowledges
  // nothing until the test says so.
  void guest_takes(const std::vector<Sent>& segments) {
    for (const auto& s : segments) {
      if (s.segment.flags.rst || s.seq() != guest_rcv) continue;
      guest_received.insert(guest_received.end(), s.payload.begin(), s.payload.end());
      guest_rcv = s.end();
    }
  }
  std::size_t send(const Bytes& data) { return conn->send(data); }
  void advance(std::chrono::milliseconds d) { now += d; }
  std::chrono::milliseconds until_deadline() const {
    REQUIRE(conn->next_deadline());
    return std::chrono::duration_cast<std::chrono::milliseconds>(*conn->next_deadline() - now);
  }
  // Runs the clock to the next deadline and polls there.
  std::vector<Sent> expire() {
    REQUIRE(conn->next_deadline());
    now = *conn->next_deadline();
    return poll();
  }
};

// Bulk transfer in both directions between the connection and a modelled
// guest TCP (a bounded receive buffer its application drains a little each
// round, cumulative ACKs, sending only within our advertised window) and a
// modelled egress side (draining readable() and refilling send()). Checks
// every byte and that neither side ever overran the other's window.
void transfer(Harness& h, const Bytes& up, const Bytes& down, std::size_t guest_capacity, std::size_t app_read,
              std::size_t egress_read) {
  const std::uint8_t guest_shift = h.guest_scale.value_or(0);
  std::size_t guest_buffered = 0;
  auto guest_window_field = [&] {
    return static_cast<std::uint16_t>(std::min<std::size_t>((guest_capacity - guest_buffered) >> guest_shift, 0xffff));
  };
  h.guest_window = guest_window_field();
  h.establish();
  const std::uint8_t our_shift = 5;  // 1 MiB receive buffer, scaling on
  REQUIRE(h.settings.receive_buffer == (1u << 20));

  // What the guest knows of our window: the right edge from our last segment.
  std::uint32_t our_edge = h.guest_nxt + 0xffff;
  std::uint32_t guest_edge = h.guest_rcv + (std::uint32_t{h.guest_window} << guest_shift);
  std::size_t up_sent = 0, down_handed = 0;
  Bytes upstream_got;
  const std::size_t guest_mss = 1460;

  for (int round = 0; round < 200000; ++round) {
    // Guest -> us, within our window.
    for (int i = 0; i < 64 && up_sent < up.size(); ++i) {
      const std::int32_t room = sandboxd::net::seq_diff(our_edge, h.guest_nxt);
      if (room <= 0) break;
      const std::size_t n = std::min({guest_mss, up.size() - up_sent, static_cast<std::size_t>(room)});
      h.guest_sends(ByteSpan(up).subspan(up_sent, n), up_sent + n == up.size());
      up_sent += n;
    }
    // The egress side.
    const std::size_t readable = std::min(h.c().readable().size(), egress_read);
    const ByteSpan r = h.c().readable().first(readable);
    upstream_got.insert(upstream_got.end(), r.begin(), r.end());
    h.c().consume(readable);
    if (down_handed < down.size()) {
      down_handed += h.c().send(ByteSpan(down).subspan(down_handed));
      if (down_handed == down.size()) h.c().finish_sending();
    }
    // Us -> guest.
    const auto out = h.poll();
    bool took = false;
    std::uint32_t expected = h.guest_rcv;
    for (const auto& s : out) {
      REQUIRE_FALSE(s.segment.flags.rst);
      REQUIRE(s.payload.size() <= guest_mss);
      REQUIRE(sandboxd::net::seq_le(s.seq() + static_cast<std::uint32_t>(s.payload.size()), guest_edge));
      const std::uint32_t edge = s.ack() + (std::uint32_t{s.segment.window} << our_shift);
      if (sandboxd::net::seq_gt(edge, our_edge)) our_edge = edge;
      REQUIRE(s.seq() == expected);  // nothing is lost, nothing is resent
      expected = s.end();
      REQUIRE(guest_buffered + s.payload.size() <= guest_capacity);
      guest_buffered += s.payload.size();
      took = took || s.end() != s.seq();
    }
    h.guest_takes(out);
    // The guest's application reads; the guest ACKs what came and the new window.
    guest_buffered -= std::min(guest_buffered, app_read);
    h.guest_window = guest_window_field();
    if (took || round % 4 == 0) {
      h.ack();
      guest_edge = h.guest_rcv + (std::uint32_t{h.guest_window} << guest_shift);
    }
    h.advance(1ms);
    if (upstream_got.size() == up.size() && h.c().guest_finished() && h.guest_received.size() == down.size() &&
        (h.c().state() == State::kTimeWait || h.c().closed()))
      break;
  }
  CHECK(upstream_got == up);
  CHECK(h.guest_received == down);
  CHECK(h.c().guest_finished());
  // Both FINs crossed and were acknowledged: TIME_WAIT, or already past it.
  CHECK((h.c().state() == State::kTimeWait || h.c().close_reason() == "closed"));
  CHECK(h.c().retransmitted_segments() == 0);
}

}  // namespace

// ---------------------------------------------------------------------------
// Sequence arithmetic and the buffer.

TEST_CASE("tcp sequence: comparisons are right across the 2^32 wrap") {
  using namespace sandboxd::net;
  CHECK(seq_lt(0xfffffff0u, 5u));
  CHECK(seq_gt(5u, 0xfffffff0u));
  CHECK(seq_le(7u, 7u));
  CHECK(seq_ge(0u, 0xffffffffu));
  CHECK(seq_diff(3u, 0xfffffffeu) == 5);
  CHECK(seq_in_window(2u, 0xfffffff0u, 100));
  CHECK_FALSE(seq_in_window(0xffffffefu, 0xfffffff0u, 100));
  CHECK_FALSE(seq_in_window(5u, 5u, 0));
}

TEST_CASE("byte queue: keeps bytes in order across consumption and compaction") {
  ByteQueue q;
  Bytes all = pattern(100000, 1);
  std::size_t in = 0, out = 0;
  while (out < all.size()) {
    const std::size_t n = std::min<std::size_t>(777, all.size() - in);
    q.append(ByteSpan(all).subspan(in, n));
    in += n;
    const std::size_t take = std::min<std::size_t>(q.size(), 500);
    REQUIRE(std::equal(q.view().begin(), q.view().begin() + static_cast<std::ptrdiff_t>(take),
                       all.begin() + static_cast<std::ptrdiff_t>(out)));
    q.consume(take);
    out += take;
    REQUIRE(q.size() == in - out);
  }
  CHECK(q.empty());
  CHECK(q.view(5, 10).empty());
}

// ---------------------------------------------------------------------------
// Opening.

TEST_CASE("tcp connection: answers nothing until accepted, then SYN-ACK with MSS and window scale") {
  Harness h;
  h.open();
  CHECK(h.c().state() == State::kAwaitingAccept);
  CHECK(h.poll().empty());
  CHECK_FALSE(h.c().next_deadline());
  CHECK(h.c().close_reason().empty());

  const Sent syn_ack = h.accept();
  CHECK(h.c().state() == State::kSynReceived);
  CHECK(syn_ack.segment.flags.syn);
  CHECK(syn_ack.segment.flags.ack);
  CHECK(syn_ack.ack() == h.guest_iss + 1);
  CHECK(syn_ack.segment.src_port == 443);
  CHECK(syn_ack.segment.dst_port == 40000);
  CHECK(syn_ack.segment.options.mss == std::optional<std::uint16_t>(1460));
  // 1 MiB needs a shift of 5: 65535 << 4 is 16 bytes short.
  CHECK(syn_ack.segment.options.window_scale == std::optional<std::uint8_t>(5));
  CHECK_FALSE(syn_ack.segment.options.sack_permitted);
  CHECK_FALSE(syn_ack.segment.options.timestamps);
  CHECK(syn_ack.segment.window == 0xffff);  // a SYN's window is not scaled
  CHECK(h.until_deadline() == 1000ms);
}

TEST_CASE("tcp connection: the guest's ACK of the SYN-ACK establishes the connection") {
  Harness h;
  h.open();
  h.accept();
  h.ack();
  CHECK(h.c().state() == State::kEstablished);
  CHECK_FALSE(h.c().next_deadline());
  // The SYN-ACK's unscaled window could not say 1 MiB. No segment of its
  // own says it: the ACK of the guest's first data does.
  CHECK(h.poll().empty());
  h.guest_sends(ByteSpan(pattern(100, 3)));
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].is_pure_ack());
  CHECK(out[0].ack() == h.guest_nxt);
  CHECK(out[0].segment.window == ((1u << 20) - 100) / 32);
  CHECK(h.poll().empty());
  CHECK(h.c().retransmitted_segments() == 0);
}

TEST_CASE("tcp connection: the ISN differs between connections") {
  Harness a, b;
  b.endpoints.guest_port = 40001;
  a.open();
  b.open();
  CHECK(a.accept().seq() != b.accept().seq());
}

TEST_CASE("tcp connection: omits window scaling when the guest did not offer it") {
  Harness h;
  h.guest_scale.reset();
  h.open();
  const Sent syn_ack = h.accept();
  CHECK_FALSE(syn_ack.segment.options.window_scale);
  h.ack();
  // Unscaled both ways: the guest's 1000 is 1000 bytes, and our window is at most 65535.
  h.guest_window = 1000;
  h.ack();
  h.send(pattern(5000, 2));
  const auto out = h.poll();
  CHECK(payload_bytes(out) == 1000);
  h.guest_sends(pattern(10, 3));
  const auto acks = h.poll();
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].segment.window == 0xffff);
}

TEST_CASE("tcp connection: the guest's MSS defaults to 536 and segments use the smaller MSS") {
  SECTION("no MSS option") {
    Harness h;
    h.guest_mss.reset();
    h.establish();
    h.send(pattern(2000, 4));
    const auto out = h.poll();
    REQUIRE(out.size() == 4);
    CHECK(out[0].payload.size() == 536);
    CHECK(out[3].payload.size() == 2000 - 3 * 536);
    CHECK(out[3].segment.flags.psh);
    CHECK_FALSE(out[0].segment.flags.psh);
  }
  SECTION("our MSS is smaller") {
    Harness h;
    h.settings.mss = 1000;
    h.guest_mss = 9000;
    h.establish();
    h.send(pattern(2500, 4));
    const auto out = h.poll();
    REQUIRE(out.size() == 3);
    CHECK(out[0].payload.size() == 1000);
  }
}

TEST_CASE("tcp connection: refuse answers the SYN with RST|ACK") {
  Harness h;
  h.open();
  h.c().refuse();
  CHECK(h.c().closed());
  CHECK(h.c().close_reason() == "refused");
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.flags.rst);
  CHECK(out[0].segment.flags.ack);
  CHECK(out[0].ack() == h.guest_iss + 1);
  CHECK(out[0].seq() == 0);
  CHECK(h.poll().empty());
  CHECK_FALSE(h.c().next_deadline());
}

TEST_CASE("tcp connection: a repeated SYN is ignored before accept and answered again after") {
  Harness h;
  h.open();
  h.deliver(h.syn());
  CHECK(h.poll().empty());
  const Sent first = h.accept();
  h.deliver(h.syn());
  const auto again = h.poll();
  REQUIRE(again.size() == 1);
  CHECK(again[0].segment.flags.syn);
  CHECK(again[0].seq() == first.seq());
  CHECK(h.c().retransmitted_segments() == 1);
}

TEST_CASE("tcp connection: retransmits the SYN-ACK with backoff and gives up after max_retransmissions") {
  Harness h;
  h.open();
  h.accept();
  std::vector<std::chrono::milliseconds> waits;
  for (unsigned i = 0; i < h.settings.max_retransmissions; ++i) {
    waits.push_back(h.until_deadline());
    const auto out = h.expire();
    REQUIRE(out.size() == 1);
    CHECK(out[0].segment.flags.syn);
    CHECK(out[0].seq() == h.iss);
  }
  CHECK(waits == std::vector<std::chrono::milliseconds>{1000ms, 2000ms, 4000ms, 8000ms, 16000ms, 30000ms, 30000ms,
                                                        30000ms, 30000ms, 30000ms});
  CHECK(h.c().retransmitted_segments() == h.settings.max_retransmissions);
  const auto last = h.expire();
  REQUIRE(last.size() == 1);
  CHECK(last[0].segment.flags.rst);
  CHECK(last[0].ack() == h.guest_iss + 1);
  CHECK(h.c().close_reason() == "retransmission timeout");
}

TEST_CASE("tcp connection: a late ACK of a retransmitted SYN-ACK still establishes") {
  Harness h;
  h.open();
  h.accept();
  h.expire();
  h.ack();
  CHECK(h.c().state() == State::kEstablished);
}

TEST_CASE("tcp connection: RST in SynReceived closes; a stray ACK does not establish") {
  Harness h;
  h.open();
  h.accept();
  auto wrong = h.from_guest();
  wrong.ack_number = h.iss + 7;
  h.deliver(wrong);
  CHECK(h.c().state() == State::kSynReceived);
  auto rst = h.from_guest();
  rst.flags = {};
  rst.flags.rst = true;
  h.deliver(rst);
  CHECK(h.c().closed());
  CHECK(h.c().close_reason() == "reset by guest");
  CHECK(h.poll().empty());
}

TEST_CASE("tcp connection: data sent before the handshake completes goes out once established") {
  Harness h;
  h.open();
  const Bytes data = pattern(3000, 5);
  CHECK(h.send(data) == 3000);
  h.c().finish_sending();
  h.accept();
  h.ack();
  CHECK(h.c().state() == State::kFinWait1);
  const auto out = h.poll();
  h.guest_takes(out);
  CHECK(h.guest_received == data);
  CHECK(out.back().segment.flags.fin);
}

// ---------------------------------------------------------------------------
// Data.

TEST_CASE("tcp connection: moves 5 MB each way through bounded buffers, bytes exact") {
  Harness h;
  h.settings.send_buffer = 128 * 1024;
  const Bytes up = pattern(5 * 1000 * 1000, 10);
  const Bytes down = pattern(5 * 1000 * 1000 + 17, 11);
  transfer(h, up, down, 96 * 1024, 40 * 1024, 64 * 1024);
}

TEST_CASE("tcp connection: sends no more than the guest's scaled window, and resumes as it acknowledges") {
  Harness h;
  h.guest_scale = 4;
  h.guest_window = 200;  // 3200 bytes
  h.establish();
  const Bytes data = pattern(10000, 12);
  CHECK(h.send(data) == 10000);
  auto out = h.poll();
  CHECK(payload_bytes(out) == 3200);
  CHECK(h.poll().empty());
  h.guest_takes(out);
  h.ack();
  out = h.poll();
  CHECK(payload_bytes(out) == 3200);
  h.guest_takes(out);
  h.guest_window = 1000;  // 16000 bytes
  h.ack();
  h.guest_takes(h.poll());
  CHECK(h.guest_received == data);
}

TEST_CASE("tcp connection: send takes only send_space") {
  Harness h;
  h.settings.send_buffer = 4000;
  h.establish();
  CHECK(h.c().send_space() == 4000);
  CHECK(h.send(pattern(5000, 13)) == 4000);
  CHECK(h.c().send_space() == 0);
  h.guest_takes(h.poll());
  CHECK(h.c().send_space() == 0);  // in flight still counts
  h.ack();
  CHECK(h.c().send_space() == 4000);
  h.c().finish_sending();
  CHECK(h.c().send_space() == 0);
  CHECK(h.send(pattern(10, 1)) == 0);
}

TEST_CASE("tcp connection: ACKs a batch of segments with one ACK, and piggybacks it on data") {
  Harness h;
  h.establish();
  h.guest_sends(pattern(1000, 14));
  h.guest_sends(pattern(1000, 15));
  h.guest_sends(pattern(1000, 16));
  auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].is_pure_ack());
  CHECK(out[0].ack() == h.guest_nxt);
  CHECK(h.c().readable().size() == 3000);
  // Window: 1 MiB - 3000, scaled by 32 and rounded down.
  CHECK(out[0].segment.window == ((1u << 20) - 3000) / 32);
  CHECK(h.poll().empty());

  h.guest_sends(pattern(500, 17));
  h.send(pattern(700, 18));
  out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].payload.size() == 700);
  CHECK(out[0].ack() == h.guest_nxt);
}

TEST_CASE("tcp connection: an out-of-order segment is dropped and dup-ACKed; the in-order resend is taken") {
  Harness h;
  h.establish();
  const Bytes a = pattern(1000, 20), b = pattern(1000, 21);
  const std::uint32_t start = h.guest_nxt;
  h.guest_nxt = start + 1000;
  h.guest_sends(b);  // a was lost
  auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].is_pure_ack());
  CHECK(out[0].ack() == start);
  CHECK(h.c().readable().empty());

  h.guest_nxt = start;
  h.guest_sends(a);
  h.guest_sends(b);
  out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == start + 2000);
  Bytes both = a;
  both.insert(both.end(), b.begin(), b.end());
  CHECK(Bytes(h.c().readable().begin(), h.c().readable().end()) == both);
}

TEST_CASE("tcp connection: partly old data is trimmed at the front; wholly old data is only ACKed") {
  Harness h;
  h.establish();
  const Bytes data = pattern(3000, 22);
  const std::uint32_t start = h.guest_nxt;
  h.guest_sends(ByteSpan(data).first(1000));
  h.poll();
  h.guest_nxt = start;
  h.guest_sends(ByteSpan(data).first(2000));  // bytes 0..999 again, then 1000 new
  CHECK(h.c().readable().size() == 2000);
  h.poll();
  h.guest_nxt = start + 500;
  h.guest_sends(ByteSpan(data).subspan(500, 1000));  // all old
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == start + 2000);
  CHECK(Bytes(h.c().readable().begin(), h.c().readable().end()) == Bytes(data.begin(), data.begin() + 2000));
}

TEST_CASE("tcp connection: data beyond the advertised window is cut off, and its FIN with it") {
  Harness h;
  h.guest_scale.reset();
  h.settings.receive_buffer = 4000;
  h.establish();  // SYN-ACK advertised 4000
  const Bytes data = pattern(6000, 23);
  auto s = h.from_guest(data);
  s.flags.fin = true;
  h.deliver(s);
  CHECK(h.c().readable().size() == 4000);
  CHECK_FALSE(h.c().guest_finished());
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == h.guest_nxt + 4000);
  CHECK(out[0].segment.window == 0);
}

TEST_CASE("tcp connection: a full receive buffer advertises zero, and consume() brings a window update") {
  Harness h;
  h.guest_scale.reset();
  h.settings.receive_buffer = 8192;
  h.establish();
  const Bytes data = pattern(8192, 24);
  for (std::size_t off = 0; off < data.size(); off += 1460)
    h.guest_sends(ByteSpan(data).subspan(off, std::min<std::size_t>(1460, data.size() - off)));
  auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.window == 0);
  CHECK(out[0].ack() == h.guest_nxt);

  // The guest's zero-window probe: its byte is not taken, the ACK repeats the zero window.
  auto probe = h.from_guest(ByteSpan(pattern(1, 25)));
  h.deliver(probe);
  out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == h.guest_nxt);
  CHECK(out[0].segment.window == 0);
  CHECK(h.c().readable().size() == 8192);

  h.c().consume(1000);  // less than one MSS: not worth announcing
  CHECK(h.poll().empty());
  h.c().consume(1000);
  out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].is_pure_ack());
  CHECK(out[0].segment.window == 2000);
  CHECK(h.poll().empty());
  h.c().consume(3000);  // 3000 more: at least two segments' worth
  out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.window == 5000);
}

TEST_CASE("tcp connection: window scaling applies to the windows we advertise and read") {
  Harness h;
  h.guest_scale = 2;
  h.guest_window = 1000;  // 4000 bytes
  h.settings.receive_buffer = 4u << 20;
  h.open();
  const Sent syn_ack = h.accept();
  CHECK(syn_ack.segment.options.window_scale == std::optional<std::uint8_t>(7));
  h.ack();
  h.send(pattern(10000, 26));
  CHECK(payload_bytes(h.poll()) == 4000);
  h.guest_sends(pattern(100, 27));
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.window == ((4u << 20) - 100) / 128);
}

// ---------------------------------------------------------------------------
// Closing.

TEST_CASE("tcp connection: FIN from the guest half-closes, and we keep sending") {
  Harness h;
  h.establish();
  h.guest_sends(pattern(100, 30), true);
  CHECK(h.c().state() == State::kCloseWait);
  CHECK(h.c().guest_finished());
  CHECK(h.c().readable().size() == 100);
  auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == h.guest_nxt);

  const Bytes reply = pattern(4000, 31);
  CHECK(h.send(reply) == 4000);
  out = h.poll();
  h.guest_takes(out);
  h.ack();
  h.c().finish_sending();
  CHECK(h.c().state() == State::kLastAck);
  out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.flags.fin);
  h.guest_takes(out);
  CHECK(h.guest_received == reply);
  h.ack();
  CHECK(h.c().closed());
  CHECK(h.c().close_reason() == "closed");
  CHECK_FALSE(h.c().next_deadline());
}

TEST_CASE("tcp connection: a retransmitted FIN from the guest in CloseWait is ACKed again") {
  Harness h;
  h.establish();
  h.guest_fin();
  h.poll();
  h.guest_nxt -= 1;
  h.guest_fin();
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == h.guest_nxt);
  CHECK(h.c().state() == State::kCloseWait);
}

TEST_CASE("tcp connection: our FIN first goes through FinWait1, FinWait2, TimeWait and closes") {
  Harness h;
  h.establish();
  h.send(pattern(100, 32));
  h.c().finish_sending();
  CHECK(h.c().state() == State::kFinWait1);
  auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.flags.fin);
  CHECK(out[0].payload.size() == 100);
  h.guest_takes(out);
  h.ack();
  CHECK(h.c().state() == State::kFinWait2);
  CHECK_FALSE(h.c().next_deadline());

  // The guest may still send while half-closed.
  h.guest_sends(pattern(50, 33));
  CHECK(h.c().readable().size() == 50);
  h.poll();
  h.guest_fin();
  CHECK(h.c().state() == State::kTimeWait);
  out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == h.guest_nxt);
  CHECK(h.until_deadline() == 2000ms);

  // Our ACK was lost: the guest resends its FIN, which is ACKed and restarts the wait.
  h.advance(1500ms);
  h.guest_nxt -= 1;
  h.guest_fin();
  out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == h.guest_nxt);
  CHECK(h.until_deadline() == 2000ms);
  h.advance(1999ms);
  h.poll();
  CHECK(h.c().state() == State::kTimeWait);
  h.advance(1ms);
  CHECK(h.poll().empty());
  CHECK(h.c().closed());
  CHECK(h.c().close_reason() == "closed");
}

TEST_CASE("tcp connection: FIN and the ACK of our FIN in one segment go straight to TimeWait") {
  Harness h;
  h.establish();
  h.c().finish_sending();
  h.guest_takes(h.poll());
  h.guest_fin();
  CHECK(h.c().state() == State::kTimeWait);
}

TEST_CASE("tcp connection: simultaneous close goes through Closing") {
  Harness h;
  h.establish();
  h.c().finish_sending();
  const auto fin = h.poll();
  REQUIRE(fin.size() == 1);
  h.guest_fin();  // crossed our FIN: does not acknowledge it
  CHECK(h.c().state() == State::kClosing);
  auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack() == h.guest_nxt);
  h.guest_takes(fin);
  h.ack();
  CHECK(h.c().state() == State::kTimeWait);
  h.expire();
  CHECK(h.c().close_reason() == "closed");
}

TEST_CASE("tcp connection: our FIN is retransmitted on RTO") {
  Harness h;
  h.establish();
  h.c().finish_sending();
  const auto fin = h.poll();
  const auto again = h.expire();
  REQUIRE(again.size() == 1);
  CHECK(again[0].segment.flags.fin);
  CHECK(again[0].seq() == fin[0].seq());
}

// ---------------------------------------------------------------------------
// Resets.

TEST_CASE("tcp connection: RST from the guest is believed only at rcv_nxt (RFC 5961)") {
  Harness h;
  h.establish();
  auto rst = h.from_guest();
  rst.flags = {};
  rst.flags.rst = true;

  SECTION("exactly at rcv_nxt: closes") {
    h.deliver(rst);
    CHECK(h.c().closed());
    CHECK(h.c().close_reason() == "reset by guest");
    CHECK(h.poll().empty());
  }
  SECTION("in the window but not exact: challenge ACK") {
    rst.seq_number += 1000;
    h.deliver(rst);
    CHECK(h.c().state() == State::kEstablished);
    const auto out = h.poll();
    REQUIRE(out.size() == 1);
    CHECK(out[0].is_pure_ack());
    CHECK(out[0].ack() == h.guest_nxt);
  }
  SECTION("outside the window: ignored") {
    rst.seq_number -= 1;
    h.deliver(rst);
    rst.seq_number += 0x40000000u;
    h.deliver(rst);
    CHECK(h.c().state() == State::kEstablished);
    CHECK(h.poll().empty());
  }
  SECTION("with SYN and FIN set too, at rcv_nxt: still a reset") {
    rst.flags.syn = true;
    rst.flags.fin = true;
    h.deliver(rst);
    CHECK(h.c().close_reason() == "reset by guest");
  }
}

TEST_CASE("tcp connection: abort sends RST at our next sequence number") {
  Harness h;
  h.establish();
  h.send(pattern(500, 34));
  h.guest_takes(h.poll());
  h.c().abort();
  CHECK(h.c().closed());
  CHECK(h.c().close_reason() == "aborted");
  CHECK(h.c().send_space() == 0);
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.flags.rst);
  CHECK(out[0].seq() == h.guest_rcv);
  CHECK(h.poll().empty());
  h.c().abort();  // twice is harmless
  CHECK(h.poll().empty());
}

TEST_CASE("tcp connection: SYN on an established connection gets a challenge ACK") {
  Harness h;
  h.establish();
  auto syn = h.syn();
  syn.seq_number = h.guest_nxt + 12345;
  h.deliver(syn);
  CHECK(h.c().state() == State::kEstablished);
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].is_pure_ack());
  CHECK(out[0].ack() == h.guest_nxt);
}

// ---------------------------------------------------------------------------
// Retransmission.

TEST_CASE("tcp connection: retransmits after RTO when the guest's ACK is lost, with backoff") {
  Harness h;
  h.establish();
  const Bytes data = pattern(3000, 40);
  h.send(data);
  const auto first = h.poll();
  REQUIRE(first.size() == 3);
  // The handshake measured an RTT of 0, so the RTO is min_rto.
  CHECK(h.until_deadline() == 200ms);
  // Nothing is resent early.
  h.advance(199ms);
  CHECK(h.poll().empty());
  h.advance(1ms);
  auto again = h.poll();  // go back N: all three again
  REQUIRE(again.size() == 3);
  CHECK(again[0].seq() == h.iss + 1);
  CHECK(payload_bytes(again) == 3000);
  CHECK(h.c().retransmitted_segments() == 3);
  CHECK(h.until_deadline() == 400ms);
  again = h.expire();
  CHECK(again.size() == 3);
  CHECK(h.until_deadline() == 800ms);

  h.guest_takes(again);
  CHECK(h.guest_received == data);
  h.ack();
  CHECK_FALSE(h.c().next_deadline());
  // Karn: the ACK of retransmitted data gave no sample, so the backed-off RTO stays.
  h.send(pattern(10, 41));
  h.poll();
  CHECK(h.until_deadline() == 800ms);
}

TEST_CASE("tcp connection: the RTO follows the measured round-trip time (RFC 6298)") {
  Harness h;
  h.settings.min_rto = 10ms;
  h.establish();  // the SYN-ACK's ACK came at once: RTT 0 -> RTO = min_rto
  for (int i = 0; i < 2; ++i) {
    h.send(pattern(100, 42));
    h.guest_takes(h.poll());
    h.advance(50ms);
    h.ack();
  }
  // Samples 0, 50, 50: srtt = 21.875 + 6.25... computed as RFC 6298 does:
  // after 0: srtt 0, var 0; 50: var 12.5, srtt 6.25; 50: var 20.3125, srtt 11.71875.
  h.send(pattern(100, 43));
  h.poll();
  const auto rto = h.until_deadline();
  CHECK(rto >= 92ms);  // 11.72 + 4 * 20.31 = 92.97
  CHECK(rto <= 93ms);
}

TEST_CASE("tcp connection: RTO clamps to min_rto and max_rto") {
  Harness h;
  h.settings.max_rto = 3000ms;
  h.establish();
  h.send(pattern(100, 44));
  h.guest_takes(h.poll());
  h.ack();
  h.send(pattern(100, 44));
  h.poll();
  CHECK(h.until_deadline() == 200ms);
  for (int i = 0; i < 6; ++i) h.expire();
  CHECK(h.until_deadline() == 3000ms);
}

TEST_CASE("tcp connection: gives up with a RST after max_retransmissions timeouts without progress") {
  Harness h;
  h.settings.max_retransmissions = 3;
  h.establish();
  h.send(pattern(100, 45));
  h.poll();
  for (int i = 0; i < 3; ++i) {
    const auto out = h.expire();
    REQUIRE(out.size() == 1);
    CHECK(out[0].payload.size() == 100);
  }
  const auto out = h.expire();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.flags.rst);
  CHECK(out[0].seq() == h.iss + 101);
  CHECK(h.c().close_reason() == "retransmission timeout");
}

TEST_CASE("tcp connection: progress resets the count of timeouts") {
  Harness h;
  h.settings.max_retransmissions = 2;
  h.establish();
  h.send(pattern(5000, 46));
  auto out = h.poll();
  for (int round = 0; round < 4; ++round) {
    h.expire();
    h.expire();
    // One segment gets through each time.
    h.guest_rcv += 1000;
    h.ack();
  }
  CHECK_FALSE(h.c().closed());
}

TEST_CASE("tcp connection: fast retransmit on the third duplicate ACK") {
  Harness h;
  h.establish();
  h.send(pattern(5 * 1460, 47));
  const auto out = h.poll();
  REQUIRE(out.size() == 5);
  // The first segment is lost; the others arrive and each brings a duplicate ACK.
  h.ack();
  h.ack();
  CHECK(h.poll().empty());
  h.ack();
  auto resent = h.poll();
  REQUIRE(resent.size() == 1);
  CHECK(resent[0].seq() == h.iss + 1);
  CHECK(resent[0].payload.size() == 1460);
  CHECK(h.c().retransmitted_segments() == 1);
  h.ack();  // a fourth does not resend again
  CHECK(h.poll().empty());
  h.guest_rcv = out.back().end();
  h.ack();
  CHECK_FALSE(h.c().next_deadline());
}

TEST_CASE("tcp connection: ACKs that change the window or carry data are not duplicates") {
  Harness h;
  h.establish();
  h.send(pattern(3 * 1460, 48));
  h.poll();
  h.guest_sends(pattern(10, 1));
  h.guest_sends(pattern(10, 2));
  h.guest_window -= 1;
  h.ack();
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].is_pure_ack());
  CHECK(h.c().retransmitted_segments() == 0);
}

// ---------------------------------------------------------------------------
// Zero window.

TEST_CASE("tcp connection: probes a zero window with backoff, never gives up while answered, resumes on reopen") {
  Harness h;
  h.guest_window = 0;
  h.settings.max_retransmissions = 3;
  h.establish();
  const Bytes data = pattern(2000, 50);
  h.send(data);
  CHECK(h.poll().empty());
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 12; ++i) {
    waits.push_back(h.until_deadline());
    const auto out = h.expire();
    REQUIRE(out.size() == 1);
    CHECK(out[0].payload.size() == 1);
    CHECK(out[0].seq() == h.iss + 1);
    h.ack();  // the guest drops the byte and repeats its zero window
  }
  CHECK(waits[0] == 200ms);
  CHECK(waits[1] == 400ms);
  CHECK(waits[2] == 800ms);
  CHECK(waits.back() == 30000ms);
  CHECK_FALSE(h.c().closed());

  h.guest_window = 0xffff;
  h.ack();
  const auto out = h.poll();
  h.guest_takes(out);
  CHECK(h.guest_received == data);
}

TEST_CASE("tcp connection: a zero-window probe the guest takes counts as progress") {
  Harness h;
  h.guest_window = 0;
  h.establish();
  h.send(pattern(10, 51));
  h.poll();
  const auto probe = h.expire();
  REQUIRE(probe.size() == 1);
  h.guest_takes(probe);
  h.ack();
  const auto next = h.expire();
  REQUIRE(next.size() == 1);
  CHECK(next[0].seq() == h.iss + 2);
}

TEST_CASE("tcp connection: unanswered zero-window probes end in a reset") {
  Harness h;
  h.guest_window = 0;
  h.settings.max_retransmissions = 2;
  h.establish();
  h.send(pattern(10, 52));
  h.poll();
  CHECK(h.expire().size() == 1);
  CHECK(h.expire().size() == 1);
  const auto out = h.expire();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.flags.rst);
  CHECK(h.c().close_reason() == "retransmission timeout");
}

TEST_CASE("tcp connection: a window shrunk to zero with data in flight is probed, not timed out") {
  Harness h;
  h.settings.max_retransmissions = 2;
  h.establish();
  h.send(pattern(3000, 53));
  h.poll();
  h.guest_rcv += 1000;
  h.guest_window = 0;
  h.ack();
  for (int i = 0; i < 6; ++i) {
    const auto out = h.expire();
    REQUIRE(out.size() == 1);
    CHECK(out[0].payload.size() == 1);
    h.ack();
  }
  CHECK_FALSE(h.c().closed());
}

// ---------------------------------------------------------------------------
// Wraparound.

TEST_CASE("tcp connection: sequence numbers wrap around 2^32 in both directions") {
  // Find a start time at which our ISN lies within 4 MiB below 2^32, so the
  // transfer below crosses the wrap. Only the ISN's spread is assumed.
  Harness h;
  h.guest_iss = 0xffffffffu - 300000;
  const Instant base = h.now;
  bool found = false;
  for (int i = 0; i < 100000 && !found; ++i) {
    Harness probe;
    probe.now = base + std::chrono::milliseconds(i);
    probe.guest_iss = h.guest_iss;
    probe.open();
    const std::uint32_t isn = probe.accept().seq();
    if (isn >= 0xffffffffu - (4u << 20)) {
      h.now = probe.now;
      found = true;
    }
  }
  REQUIRE(found);
  const Bytes up = pattern(5 * 1000 * 1000, 60);
  const Bytes down = pattern(5 * 1000 * 1000, 61);
  transfer(h, up, down, 64 * 1024, 32 * 1024, 100 * 1024);
  CHECK(h.iss >= 0xffffffffu - (4u << 20));
  CHECK(h.guest_rcv < h.iss);        // our numbers wrapped
  CHECK(h.guest_nxt < h.guest_iss);  // and the guest's
}

TEST_CASE("tcp connection: retransmission across the wrap resends the right bytes") {
  Harness h;
  h.guest_iss = 0xfffffff0u;
  h.establish();
  const Bytes in = pattern(100, 62);
  const std::uint32_t start = h.guest_nxt;
  h.guest_nxt = start + 50;
  h.guest_sends(ByteSpan(in).subspan(50));  // out of order across the wrap
  CHECK(h.c().readable().empty());
  h.guest_nxt = start;
  h.guest_sends(in);
  CHECK(Bytes(h.c().readable().begin(), h.c().readable().end()) == in);
  CHECK(h.guest_nxt < 100);
}

// ---------------------------------------------------------------------------
// Hostile input.

TEST_CASE("tcp connection: an ACK for data never sent is answered and ignored") {
  Harness h;
  h.establish();
  h.send(pattern(1000, 70));
  h.poll();
  auto bogus = h.from_guest(ByteSpan(pattern(10, 71)));
  bogus.ack_number = h.iss + 1 + 5000;
  h.deliver(bogus);
  CHECK(h.c().readable().empty());  // the segment was dropped, its data too
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].is_pure_ack());
  CHECK(h.c().send_space() == h.settings.send_buffer - 1000);  // nothing freed
  // And an ACK from far in the past (RFC 5961 5.2).
  bogus.ack_number = h.iss - 0x20000000u;
  h.deliver(bogus);
  CHECK(h.c().readable().empty());
  CHECK(h.poll().size() == 1);
}

TEST_CASE("tcp connection: segments without ACK are dropped once synchronised") {
  Harness h;
  h.establish();
  auto s = h.from_guest(ByteSpan(pattern(100, 72)));
  s.flags.ack = false;
  h.deliver(s);
  s.flags.fin = true;
  h.deliver(s);
  CHECK(h.c().readable().empty());
  CHECK(h.c().state() == State::kEstablished);
  CHECK(h.poll().empty());
}

TEST_CASE("tcp connection: data, FIN and ACKs before accept are ignored") {
  Harness h;
  h.open();
  auto s = h.from_guest(ByteSpan(pattern(100, 73)));
  s.flags.fin = true;
  h.deliver(s);
  auto odd_rst = s;
  odd_rst.flags.rst = true;
  odd_rst.seq_number += 5;
  h.deliver(odd_rst);
  CHECK(h.c().state() == State::kAwaitingAccept);
  CHECK(h.poll().empty());
  CHECK(h.c().readable().empty());
  h.accept();
  h.ack();
  CHECK(h.c().state() == State::kEstablished);
  CHECK(h.c().readable().empty());
}

TEST_CASE("tcp connection: survives random hostile segments within bounds") {
  // A deterministic storm of segments with arbitrary flags, numbers near and
  // far from the expected ones, windows and payload sizes; interleaved with
  // egress activity and time. The invariants must hold throughout.
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    Harness h;
    h.settings.receive_buffer = 20000;
    h.settings.send_buffer = 30000;
    h.establish();
    std::uint32_t x = seed * 7919u;
    auto next = [&] {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      return x;
    };
    const Bytes junk = pattern(70000, seed);
    for (int i = 0; i < 2000 && !h.c().closed(); ++i) {
      wire::TcpRepr s = h.from_guest();
      const std::uint32_t r = next();
      s.flags.syn = (r & 0x3f) == 1;
      s.flags.rst = (r & 0x3f) == 2;
      s.flags.fin = (r & 0x1f) == 3;
      s.flags.ack = (r & 0x0f) != 4;
      const std::uint32_t near = next() % 100000;
      s.seq_number = (r & 0x100) ? h.guest_nxt + near - 50000 : next();
      s.ack_number = (r & 0x200) ? h.guest_rcv + near - 50000 : next();
      s.window = static_cast<std::uint16_t>((r & 0x400) ? 0 : next());
      s.payload = ByteSpan(junk).first(next() % junk.size() % ((r & 0x800) ? 70000 : 2000));
      h.deliver(s);
      if ((r & 0x3000) == 0) h.c().consume(next() % 5000);
      if ((r & 0xc000) == 0) h.c().send(ByteSpan(junk).first(next() % 10000));
      if ((r & 0x70000) == 0) h.c().finish_sending();
      if ((r & 0x180000) == 0) h.advance(std::chrono::milliseconds(next() % 5000));
      for (const auto& out : h.poll()) {
        REQUIRE(out.payload.size() <= 1460);
        h.guest_takes({out});
      }
      REQUIRE(h.c().readable().size() <= h.settings.receive_buffer);
      REQUIRE(h.c().send_space() <= h.settings.send_buffer);
      if (h.c().next_deadline()) REQUIRE(*h.c().next_deadline() >= h.now);
    }
  }
}

TEST_CASE("tcp connection: in TimeWait a RST at rcv_nxt closes and a SYN gets a challenge ACK") {
  Harness h;
  h.establish();
  h.c().finish_sending();
  h.guest_takes(h.poll());
  h.guest_fin();
  h.poll();
  REQUIRE(h.c().state() == State::kTimeWait);
  auto syn = h.syn();
  syn.seq_number = h.guest_nxt + 100000;
  h.deliver(syn);
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].is_pure_ack());
  auto rst = h.from_guest();
  rst.flags = {};
  rst.flags.rst = true;
  rst.seq_number -= 1;
  h.deliver(rst);
  CHECK(h.c().state() == State::kTimeWait);
  rst.seq_number += 1;
  h.deliver(rst);
  CHECK(h.c().close_reason() == "reset by guest");
}

TEST_CASE("tcp connection: abort before accept answers the SYN with a RST") {
  Harness h;
  h.open();
  h.c().abort();
  CHECK(h.c().close_reason() == "aborted");
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.flags.rst);
  CHECK(out[0].ack() == h.guest_iss + 1);
}

TEST_CASE("tcp connection: the FIN waits behind data held back by a zero window") {
  Harness h;
  h.guest_window = 0;
  h.establish();
  const Bytes data = pattern(3000, 80);
  h.send(data);
  h.c().finish_sending();
  CHECK(h.c().state() == State::kFinWait1);
  CHECK(h.poll().empty());  // neither data nor FIN
  h.guest_window = 0xffff;
  h.ack();
  const auto out = h.poll();
  REQUIRE(out.size() == 3);
  CHECK(out.back().segment.flags.fin);
  h.guest_takes(out);
  CHECK(h.guest_received == data);
  h.ack();
  CHECK(h.c().state() == State::kFinWait2);
}

TEST_CASE("tcp connection: bytes up to the advertised right edge are taken even as the buffer fills") {
  // The window is promised from free space, so data up to the promised edge
  // always fits; once the buffer is full the window is zero, not negative.
  Harness h;
  h.guest_scale.reset();
  h.settings.receive_buffer = 3000;
  h.establish();
  h.guest_sends(pattern(1000, 81));
  h.guest_sends(pattern(2000, 82));
  CHECK(h.c().readable().size() == 3000);
  h.guest_sends(pattern(10, 83));
  CHECK(h.c().readable().size() == 3000);
  const auto out = h.poll();
  REQUIRE(out.size() == 1);
  CHECK(out[0].segment.window == 0);
  CHECK(out[0].ack() == h.guest_nxt - 10);
}
