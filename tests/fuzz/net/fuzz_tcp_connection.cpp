// The TCP state machine under an arbitrary sequence of inputs: segments with
// any flags, numbers, windows and payload sizes, the egress side's calls, and
// the passing of time. No sequence may crash it, and these must hold:
// * the buffers stay within the settings;
// * every byte readable() offers is the guest's byte at that position (the
//   guest's payload byte at sequence s is a fixed function of s), and every
//   payload byte emitted is the egress byte at that position of our stream;
// * no emitted payload exceeds our MSS;
// * kClosed is terminal and is exactly when close_reason() is set;
// * after poll() every deadline lies in the future.
//
// Input layout (short reads give zeros):
//   u8  buffers: bits 0-2 receive buffer size, 3-5 send buffer size
//   u8  guest options: bit 0 MSS present, bit 1 window scale present,
//       bits 2-5 window scale, bits 6-7 our MSS
//   u16 guest MSS, u16 guest SYN window, u32 guest ISN, u8 max_retransmissions (mod 5)
//   then operations, each an opcode byte (mod 10) and its arguments:
//   0 segment: u8 flags (FIN SYN RST PSH ACK), u8 number modes (bits 0-1 seq,
//     2-3 ack: 0 expected, 1 expected + i16 delta, 2 absolute), u32 seq,
//     u32 ack, u16 window, u16 payload length (mod 3000)
//   1 accept  2 refuse  3 consume u16  4 send u16 (mod 8192)  5 finish_sending
//   6 abort   7 advance u16 ms  8 advance to the next deadline  9 poll
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "daemon/net/stack/tcp_connection.hpp"
#include "fuzz_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net;
using sandboxd::net::wire::fuzz::require;

namespace {

std::byte guest_byte(std::uint32_t seq) { return static_cast<std::byte>((seq * 2654435761u) >> 24); }
std::byte egress_byte(std::uint64_t offset) { return static_cast<std::byte>((offset * 40503u) >> 5); }

constexpr std::size_t kBufferSizes[8] = {1, 2, 100, 1460, 3000, 20000, 65536, 1 << 20};
constexpr std::uint16_t kOurMss[4] = {1, 64, 536, 1460};
constexpr std::uint64_t kMaxStream = 1 << 20;  // bytes the egress side hands in, at most

class Checker final : public TcpSegmentSink {
 public:
  explicit Checker(const TcpSettings& settings) : settings_(settings) {}

  void emit(const wire::TcpRepr& segment) override {
    if (segment.flags.syn) {
      require(segment.flags.ack && segment.payload.empty());
      iss = segment.seq_number;
    }
    require(segment.payload.size() <= settings_.mss);
    if (!segment.payload.empty()) {
      require(iss.has_value());
      const std::uint32_t offset = segment.seq_number - (*iss + 1);
      require(std::uint64_t{offset} + segment.payload.size() <= stream_length);
      for (std::size_t i = 0; i < segment.payload.size(); ++i) require(segment.payload[i] == egress_byte(offset + i));
    }
    if (!segment.flags.rst) {
      expected_seq = segment.ack_number;
      our_next = segment.seq_number + segment.sequence_length();
    }
  }

  std::optional<std::uint32_t> iss;
  std::uint64_t stream_length = 0;
  std::uint32_t expected_seq = 0;  // the ack number we last sent: our rcv_nxt
  std::uint32_t our_next = 0;      // past our last segment

 private:
  const TcpSettings& settings_;
};

std::uint32_t pick(std::uint8_t mode, std::uint32_t expected, std::uint32_t raw) {
  switch (mode & 3) {
    case 0:
      return expected;
    case 1:
      return expected + static_cast<std::uint32_t>(static_cast<std::int16_t>(raw & 0xffff));
    default:
      return raw;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteReader in(wire::fuzz::as_span(data, size));
  TcpSettings settings;
  const std::uint8_t buffers = in.u8();
  const std::uint8_t options = in.u8();
  settings.receive_buffer = kBufferSizes[buffers & 7];
  settings.send_buffer = kBufferSizes[(buffers >> 3) & 7];
  settings.mss = kOurMss[options >> 6];
  settings.initial_rto = std::chrono::milliseconds(50);
  settings.min_rto = std::chrono::milliseconds(10);
  settings.max_rto = std::chrono::milliseconds(1000);
  settings.time_wait = std::chrono::milliseconds(100);

  TcpEndpoints endpoints{wire::Ipv4Address{{10, 0, 2, 15}}, 40000, wire::Ipv4Address{{1, 1, 1, 1}}, 80};
  wire::TcpRepr syn;
  syn.src_port = endpoints.guest_port;
  syn.dst_port = endpoints.remote_port;
  syn.flags.syn = true;
  const std::uint16_t guest_mss = in.u16();
  if (options & 1) syn.options.mss = guest_mss;
  if (options & 2) syn.options.window_scale = static_cast<std::uint8_t>(std::min((options >> 2) & 15, 14));
  syn.window = in.u16();
  syn.seq_number = in.u32();
  settings.max_retransmissions = in.u8() % 5;
  const std::uint32_t irs = syn.seq_number;

  Instant now = Instant{} + std::chrono::hours(1);
  TcpConnection conn(endpoints, syn, settings, now);
  Checker checker(settings);
  checker.expected_seq = irs + 1;
  std::uint64_t consumed = 0;
  Bytes payload;
  Bytes egress;
  bool was_closed = false;

  while (in.ok() && !in.at_end()) {
    const std::uint8_t op = in.u8() % 10;
    bool polled = false;
    switch (op) {
      case 0: {
        const std::uint8_t flags = in.u8();
        const std::uint8_t modes = in.u8();
        const std::uint32_t seq_raw = in.u32();
        const std::uint32_t ack_raw = in.u32();
        wire::TcpRepr s;
        s.src_port = endpoints.guest_port;
        s.dst_port = endpoints.remote_port;
        s.flags.fin = flags & 1;
        s.flags.syn = flags & 2;
        s.flags.rst = flags & 4;
        s.flags.psh = flags & 8;
        s.flags.ack = flags & 16;
        s.seq_number = pick(modes, checker.expected_seq, seq_raw);
        s.ack_number = pick(static_cast<std::uint8_t>(modes >> 2), checker.our_next, ack_raw);
        s.window = in.u16();
        payload.resize(in.u16() % 3000);
        for (std::size_t i = 0; i < payload.size(); ++i)
          payload[i] = guest_byte(s.seq_number + static_cast<std::uint32_t>(i));
        s.payload = payload;
        conn.on_segment(s, now);
        break;
      }
      case 1:
        conn.accept(now);
        break;
      case 2:
        conn.refuse();
        break;
      case 3: {
        const std::size_t n = in.u16();
        consumed += std::min(n, conn.readable().size());
        conn.consume(n);
        break;
      }
      case 4: {
        std::size_t n = in.u16() % 8192;
        n = std::min<std::uint64_t>(n, kMaxStream - checker.stream_length);
        egress.resize(n);
        for (std::size_t i = 0; i < n; ++i) egress[i] = egress_byte(checker.stream_length + i);
        const std::size_t space = conn.send_space();
        const std::size_t taken = conn.send(egress);
        require(taken == std::min(n, space));
        checker.stream_length += taken;
        break;
      }
      case 5:
        conn.finish_sending();
        break;
      case 6:
        conn.abort();
        break;
      case 7:
        now += std::chrono::milliseconds(in.u16());
        conn.poll(now, checker);
        polled = true;
        break;
      case 8:
        if (auto deadline = conn.next_deadline()) now = std::max(now, *deadline);
        conn.poll(now, checker);
        polled = true;
        break;
      default:
        conn.poll(now, checker);
        polled = true;
        break;
    }

    require(conn.readable().size() <= settings.receive_buffer);
    require(conn.send_space() <= settings.send_buffer);
    const ByteSpan readable = conn.readable();
    for (std::size_t i = 0; i < readable.size(); ++i)
      require(readable[i] == guest_byte(irs + 1 + static_cast<std::uint32_t>(consumed + i)));
    require(conn.closed() == !conn.close_reason().empty());
    require(!was_closed || conn.closed());
    was_closed = conn.closed();
    if (polled && conn.next_deadline()) require(*conn.next_deadline() > now);
  }
  return 0;
}
