// A HostResolver for tests that keeps every lookup until the test answers
// it — as late as the test likes, after the network that asked is gone if
// need be. Like getaddrinfo, cancel() does not take back a lookup under way:
// it is only counted, and the callbacks stay until answered.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "daemon/net/egress/host_resolver.hpp"

namespace sandboxd::net::test {

class HeldResolver final : public HostResolver {
 public:
  struct Lookup {
    std::string name;
    Callback done;
  };

  void resolve(std::string name, Callback done) override { pending.push_back({std::move(name), std::move(done)}); }
  void cancel() override { ++cancels; }

  // Answers every lookup held so far with `result`, oldest first.
  void answer_all(const HostLookup& result) {
    auto lookups = std::move(pending);
    pending.clear();
    for (auto& lookup : lookups) lookup.done(result);
  }

  std::vector<Lookup> pending;
  unsigned cancels = 0;
};

}  // namespace sandboxd::net::test
