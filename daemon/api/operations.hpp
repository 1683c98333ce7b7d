// The control plane's operations (WS_PROTOCOL.md, "Operations"): one
// function each, in one table, from the request's members to the service's
// call and from its answer to the response. A function answers every request
// exactly once, with ClientSession::respond or ::fail, at once or when the
// service calls back.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string_view>

namespace sandboxd::api {

class ClientSession;

struct Request {
  const boost::json::value& id;
  const boost::json::object& members;
};

using Operation = void (*)(ClientSession& client, const Request& request);

// The operation named `op`; nullptr for a name the protocol does not have.
Operation find_operation(std::string_view op);

}  // namespace sandboxd::api
