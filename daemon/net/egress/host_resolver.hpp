// Where the gateway's DNS server gets the answers it does not make up: the
// host's own resolver, behind an interface so that tests can hold an answer
// back and give it when they choose — after the network that asked is gone,
// for instance.
//
// The contract every implementation keeps: resolve() never calls back
// inline; the callback runs later on the executor the resolver was made
// with, exactly once, and possibly long after whoever asked has stopped or
// been destroyed. getaddrinfo cannot be interrupted, so cancel() only makes
// lookups under way report kFailed (or not be asked at all); it does not
// make their callbacks go away. A caller's callback therefore holds nothing
// but what it owns and weak references it checks.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/net/wire/address.hpp"

namespace sandboxd::net {

struct HostLookup {
  enum class Outcome {
    kFound,       // the name exists; `addresses` may still be empty (no A records)
    kNoSuchName,  // NXDOMAIN
    kFailed,      // the resolver could not say (timeout, no server, cancelled)
  };
  Outcome outcome = Outcome::kFailed;
  std::vector<wire::Ipv4Address> addresses;  // IPv4 only, each once
};

class HostResolver {
 public:
  using Callback = std::function<void(HostLookup)>;

  virtual ~HostResolver() = default;
  virtual void resolve(std::string name, Callback done) = 0;
  virtual void cancel() = 0;
};

// The host's resolver (getaddrinfo on asio's resolver thread, so the event
// loop never blocks on it).
std::shared_ptr<HostResolver> make_host_resolver(boost::asio::any_io_executor executor);

}  // namespace sandboxd::net
