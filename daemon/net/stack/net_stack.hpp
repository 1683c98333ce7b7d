// One sandbox's network, as seen from the guest's side of its virtio-net
// link: the gateway, its ARP responder, DHCP server and ICMP echo, and the
// guest end of every TCP connection and UDP flow the guest starts.
//
// Theory of operation
// -------------------
// Frames from the guest come in through receive_frame(); frames for the guest
// accumulate in outbound(), already in QEMU's stream framing. The stack owns
// no socket and reads no clock: the adapter (SandboxNetwork,
// daemon/net/sandbox_network.hpp) passes the time in and moves the bytes.
// Whatever the stack needs from the outside world — may this flow be opened,
// here are bytes for it, the guest closed it — it says as StackEvents, which
// the egress side (daemon/net/egress/egress.hpp) takes with take_events() and
// answers through the tcp_* and udp_* calls. Those calls, like frames, only
// change state; poll() then emits what is due (ACKs of a whole batch of
// segments in one go, data the guest's window allows, retransmissions). The
// adapter's loop is: input, events, poll, write outbound; and poll() again at
// next_deadline().
//
// The guest is held to its own addresses: frames from any MAC but the
// guest's, and IPv4 packets from any source address but the guest's (DHCP
// before it has one aside), are dropped and counted. Only the gateway
// answers: ARP for every address but the guest's (so every destination is
// reached through it), ICMP echo to the gateway's own address, DHCP. Every
// other datagram or segment belongs to a flow, and every new flow is put to
// the egress side first — including the gateway's DNS port, which the egress
// side answers itself.
//
// Bounded: at most config.max_tcp_connections connections — when the table
// is full, a new SYN takes the place of the oldest connection in TIME_WAIT
// (a guest opening many short connections must not run into a table of
// closed ones), else of the oldest half-open one (a SYN flood cannot lock
// real connections out), and is answered with RST only when every
// connection is established — and config.max_udp_flows flows (datagrams beyond are
// dropped); each connection's buffers are bounded by its TcpSettings; UDP
// flows expire after config.udp_idle_timeout without traffic either way.
// Frames and events accumulate only until the adapter takes them, which it
// does after every batch.
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/net/stack/dhcp_server.hpp"
#include "daemon/net/stack/flow_key.hpp"
#include "daemon/net/stack/net_counters.hpp"
#include "daemon/net/stack/stack_config.hpp"
#include "daemon/net/stack/tcp_connection.hpp"
#include "daemon/net/wire/ipv4.hpp"
#include "daemon/net/wire/stream_framing.hpp"
#include "daemon/net/wire/tcp.hpp"
#include "daemon/net/wire/udp.hpp"
#include "protocol/bytes.hpp"

namespace sandboxd::net {

struct StackEvent {
  enum class Kind {
    kTcpOpen,      // a guest SYN for a new connection: answer tcp_accept or tcp_refuse
    kTcpReadable,  // new bytes from the guest in tcp_readable(), or its FIN
    kTcpWritable,  // tcp_send_space() grew after tcp_send() had filled it
    kTcpClosed,    // the connection is over (see reason); the id is dead
    kUdpDatagram,  // a datagram from the guest; `new_flow` for a flow's first
    kUdpClosed,    // the flow expired; the id is dead
  };
  Kind kind;
  FlowId id = 0;
  FlowKey key;
  bool new_flow = false;
  Bytes payload;                // kUdpDatagram
  std::string_view reason;      // kTcpClosed: a string literal
};

class NetStack {
 public:
  explicit NetStack(const StackConfig& config);
  NetStack(const NetStack&) = delete;
  NetStack& operator=(const NetStack&) = delete;
  ~NetStack();

  const StackConfig& config() const { return config_; }
  const NetCounters& counters() const { return counters_; }

  // A frame the guest sent (without the stream length prefix).
  void receive_frame(ByteSpan frame, Instant now);
  // Emits what is due; call after each batch of input and at next_deadline().
  void poll(Instant now);
  std::optional<Instant> next_deadline() const;

  // Frames for the guest, stream-framed. The adapter takes them after poll().
  wire::FrameBatch& outbound() { return outbound_; }
  std::vector<StackEvent> take_events();

  // TCP connections, by the id of their kTcpOpen event. Calls naming an id
  // that is closed or unknown do nothing (and return nothing).
  void tcp_accept(FlowId id, Instant now);
  void tcp_refuse(FlowId id);
  ByteSpan tcp_readable(FlowId id) const;
  void tcp_consume(FlowId id, std::size_t n);
  bool tcp_guest_finished(FlowId id) const;
  std::size_t tcp_send_space(FlowId id) const;
  // Takes what fits; a kTcpWritable event follows once space opens again
  // when this left none.
  std::size_t tcp_send(FlowId id, ByteSpan data);
  void tcp_finish(FlowId id);
  void tcp_abort(FlowId id);

  // A datagram from the remote end of a UDP flow, for the guest.
  void udp_send(FlowId id, ByteSpan payload, Instant now);
  // Sends a datagram to the guest from (remote_ip, remote_port) outside any
  // flow's bookkeeping; for answers on behalf of the gateway.
  void udp_send_from(const FlowKey& key, ByteSpan payload);
  void udp_close(FlowId id);

  std::size_t tcp_connection_count() const { return tcp_.size(); }
  std::size_t udp_flow_count() const { return udp_.size(); }

 private:
  struct TcpEntry;
  struct UdpEntry {
    FlowKey key;
    Instant last_activity;
  };
  class SegmentSink;

  void drop(DropReason reason) { ++counters_.drop(reason); }
  // net_stack.cpp: dispatch and the gateway's own answers.
  void handle_ipv4(ByteSpan payload, Instant now);
  void handle_arp(ByteSpan payload);
  void handle_icmp(const wire::Ipv4Repr& ip);
  void handle_dhcp(const wire::UdpRepr& udp);
  // net_stack_tcp.cpp: the TCP connections.
  void handle_tcp(const wire::Ipv4Repr& ip, Instant now);
  void open_tcp(const FlowKey& key, const wire::TcpRepr& syn, Instant now);
  bool reclaim_time_wait();
  bool evict_embryonic(Instant now);
  void reset_unknown_segment(const wire::Ipv4Repr& ip, const wire::TcpRepr& seg);
  void mark_dirty(TcpEntry& entry);
  void poll_tcp(Instant now);
  std::optional<Instant> next_tcp_deadline() const;
  TcpEntry* find_tcp(FlowId id);
  const TcpEntry* find_tcp(FlowId id) const;
  // net_stack_udp.cpp: the UDP flows.
  void handle_udp(const wire::Ipv4Repr& ip, Instant now);
  void expire_udp(Instant now);
  std::optional<Instant> next_udp_deadline() const;

  // Frame building: IPv4 inside Ethernet, to the guest.
  void emit_tcp(const wire::TcpRepr& segment, wire::Ipv4Address src, wire::Ipv4Address dst);
  void emit_udp(wire::Ipv4Address src, std::uint16_t src_port, wire::Ipv4Address dst, std::uint16_t dst_port,
                ByteSpan payload, wire::MacAddress dst_mac);

  StackConfig config_;
  DhcpServer dhcp_;
  NetCounters counters_;
  wire::FrameBatch outbound_;
  std::vector<StackEvent> events_;
  FlowId next_id_ = 1;
  std::uint16_t next_ip_id_ = 1;

  std::unordered_map<FlowKey, FlowId> tcp_by_key_;
  std::unordered_map<FlowId, std::unique_ptr<TcpEntry>> tcp_;
  std::vector<FlowId> dirty_;

  std::unordered_map<FlowKey, FlowId> udp_by_key_;
  std::unordered_map<FlowId, UdpEntry> udp_;
};

}  // namespace sandboxd::net
