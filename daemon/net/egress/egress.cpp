#include "daemon/net/egress/egress.hpp"

#include <spdlog/spdlog.h>

namespace sandboxd::net {
namespace asio = boost::asio;
using Kind = StackEvent::Kind;

namespace {

asio::ip::address_v4 to_asio(wire::Ipv4Address a) { return asio::ip::address_v4(a.to_u32()); }

}  // namespace

std::string EgressCounters::to_text() const {
  std::string out;
  auto line = [&](std::string_view name, std::uint64_t value) { append_counter_line(out, name, value); };
  line("tcp connected upstream", tcp_connected);
  line("tcp denied", tcp_denied);
  line("tcp connect failed", tcp_connect_failed);
  line("udp flows allowed", udp_flows_allowed);
  line("udp flows denied", udp_flows_denied);
  line("dns queries", dns_queries);
  line("dns resolved on host", dns_resolved_on_host);
  line("dns resolve failures", dns_resolve_failures);
  line("bytes to upstream", bytes_to_upstream);
  line("bytes from upstream", bytes_from_upstream);
  return out;
}

Egress::Egress(asio::any_io_executor executor, NetStack& stack, EgressPolicy policy, std::function<void()> kick,
               std::shared_ptr<HostResolver> resolver)
    // Not make_shared: the context gets an allocation of its own, freed when
    // Egress goes, and not kept by the handlers' weak references to its
    // control block; so a reference that outlived it is a use after free the
    // sanitizers report, not a silent read of a destroyed object.
    : executor_(executor), context_(new EgressContext(stack, std::move(kick), std::move(policy))) {
  dns_ = std::make_shared<DnsServer>(executor_, context_, std::move(resolver));
}

Egress::~Egress() { stop(); }

void Egress::stop() {
  if (context_->stopped) return;
  context_->stopped = true;
  dns_->stop();
  for (auto& [id, proxy] : tcp_) proxy->stop();
  for (auto& [id, proxy] : udp_) proxy->stop();
  tcp_.clear();
  udp_.clear();
}

bool Egress::is_gateway_dns(const FlowKey& key) const {
  return key.remote_ip == context_->stack.config().gateway_ip && key.remote_port == wire::DnsRepr::kPort;
}

void Egress::handle(StackEvent& event) {
  if (context_->stopped) return;
  switch (event.kind) {
    case Kind::kTcpOpen: return open_tcp(event);
    case Kind::kTcpReadable:
      if (dns_tcp_.contains(event.id)) return dns_->on_tcp_readable(event.id);
      if (auto it = tcp_.find(event.id); it != tcp_.end()) it->second->on_readable();
      return;
    case Kind::kTcpWritable:
      if (dns_tcp_.contains(event.id)) return dns_->on_tcp_writable(event.id);
      if (auto it = tcp_.find(event.id); it != tcp_.end()) it->second->on_writable();
      return;
    case Kind::kTcpClosed:
      if (dns_tcp_.erase(event.id)) return dns_->on_tcp_closed(event.id);
      if (auto it = tcp_.find(event.id); it != tcp_.end()) {
        it->second->on_closed(event.reason, std::move(event.payload));
        tcp_.erase(it);
      }
      return;
    case Kind::kUdpDatagram:
      if (event.new_flow) return open_udp(event);
      if (is_gateway_dns(event.key)) return dns_->on_udp_query(event.id, event.payload);
      if (auto it = udp_.find(event.id); it != udp_.end()) it->second->send(event.payload);
      return;
    case Kind::kUdpClosed:
      if (auto it = udp_.find(event.id); it != udp_.end()) {
        it->second->stop();
        udp_.erase(it);
      }
      return;
  }
}

void Egress::open_tcp(const StackEvent& event) {
  if (is_gateway_dns(event.key)) {
    dns_tcp_.insert(event.id);
    return dns_->on_tcp_open(event.id);
  }
  EgressDecision decision = event.key.remote_ip == context_->stack.config().gateway_ip
                                ? EgressDecision{false, {}, "the gateway only serves DNS"}
                                : context_->policy.decide(event.key);
  if (!decision.allowed) {
    ++context_->counters.tcp_denied;
    spdlog::debug("net: tcp {} denied: {}", event.key.to_string(), decision.reason);
    context_->stack.tcp_refuse(event.id);
    context_->kick();
    return;
  }
  auto proxy = std::make_shared<TcpProxy>(executor_, context_, event.id);
  tcp_.emplace(event.id, proxy);
  proxy->connect(asio::ip::tcp::endpoint(to_asio(decision.connect_to), event.key.remote_port));
}

void Egress::open_udp(StackEvent& event) {
  if (is_gateway_dns(event.key)) return dns_->on_udp_query(event.id, event.payload);
  EgressDecision decision = event.key.remote_ip == context_->stack.config().gateway_ip
                                ? EgressDecision{false, {}, "the gateway only serves DNS"}
                                : context_->policy.decide(event.key);
  auto proxy = decision.allowed ? std::make_shared<UdpProxy>(executor_, context_, event.id) : nullptr;
  if (!proxy || !proxy->open(asio::ip::udp::endpoint(to_asio(decision.connect_to), event.key.remote_port))) {
    ++context_->counters.udp_flows_denied;
    spdlog::debug("net: udp {} denied: {}", event.key.to_string(),
                  decision.allowed ? std::string_view("socket failed") : decision.reason);
    return;
  }
  ++context_->counters.udp_flows_allowed;
  udp_.emplace(event.id, proxy);
  proxy->send(event.payload);
}

}  // namespace sandboxd::net
