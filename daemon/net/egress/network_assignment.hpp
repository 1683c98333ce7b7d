// What a sandbox network is given when it is handed to a sandbox.
//
// A pooled VM's network starts before anyone knows which sandbox it will
// serve, under a waiting policy that lets nothing out (deny-all). When the
// VM is handed out, SandboxNetwork::assign() gives it, in one step, whose it
// is (the sandbox's id, its owner: every log line and audit record names
// them from then on), the sandbox's egress policy, and where to report its
// flows. Flows opened from then on follow the new policy; flows already open
// keep going under the decision they were opened with.
#pragma once

#include <string>

#include "daemon/net/egress/egress_policy.hpp"
#include "daemon/net/egress/flow_audit.hpp"

namespace sandboxd::net {

struct NetworkAssignment {
  std::string sandbox_id;
  std::string owner;
  EgressPolicy policy;
  FlowAuditSink audit;  // empty: flows are not reported
};

}  // namespace sandboxd::net
