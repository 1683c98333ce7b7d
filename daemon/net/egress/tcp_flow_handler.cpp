#include "daemon/net/egress/tcp_flow_handler.hpp"

#include "daemon/net/egress/dns_tcp_session.hpp"
#include "daemon/net/egress/tcp_relay.hpp"

namespace sandboxd::net {
namespace asio = boost::asio;

namespace {

// A flow the plan refused: RST to the guest's SYN at once, so it fails fast
// instead of timing out. Nothing else happens on the flow; the stack reports
// it closed ("refused") in the same round.
class TcpRefusal final : public TcpFlowHandler {
 public:
  TcpRefusal(const std::weak_ptr<EgressContext>& context, FlowId id) {
    if (auto c = running(context)) {
      c->stack.tcp_refuse(id);
      c->kick();
    }
  }
  void on_readable() override {}
  void on_writable() override {}
  void on_closed(std::string_view, Bytes) override {}
  void stop() override {}
};

}  // namespace

std::shared_ptr<TcpFlowHandler> start_tcp_flow(FlowId id, const FlowKey& key, const FlowPlan& plan,
                                               const TcpFlowEnv& env) {
  switch (plan.kind) {
    case FlowPlan::Kind::kGatewayDns: {
      auto session = std::make_shared<DnsTcpSession>(env.context, env.dns, id);
      session->open();
      return session;
    }
    case FlowPlan::Kind::kConnect: {
      auto relay = std::make_shared<TcpRelay>(env.executor, env.context, id);
      relay->connect(asio::ip::tcp::endpoint(asio::ip::address_v4(plan.connect_to.to_u32()), key.remote_port));
      return relay;
    }
    case FlowPlan::Kind::kRefuse: break;
  }
  return std::make_shared<TcpRefusal>(env.context, id);
}

}  // namespace sandboxd::net
