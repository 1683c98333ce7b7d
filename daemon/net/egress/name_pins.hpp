// Which name each address the sandbox's DNS gave out was given for.
//
// A guest connects to an address, not a name; the rules speak of names. So
// every address the gateway's DNS answers is pinned to the name it answered,
// and a flow to that address is judged by that name (EgressPolicy::decide)
// and connected to exactly that address. An address no answer gave out is
// known by no name: host rules cannot allow a flow to it.
//
// When several names share an address (a CDN), the latest answer wins: the
// guest asked for that name last, so that is the connection it is about to
// make. Pins outlive the answers' TTL, since programs cache answers longer
// than they are told to; the table is bounded instead, and the oldest pin
// goes first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/net/wire/address.hpp"

namespace sandboxd::net {

class NamePins {
 public:
  static constexpr std::size_t kDefaultCapacity = 4096;

  explicit NamePins(std::size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  void pin(wire::Ipv4Address address, std::string_view name);
  // The name `address` was last given out for; empty if none.
  std::string_view name_for(wire::Ipv4Address address) const;
  void clear();
  std::size_t size() const { return pins_.size(); }

 private:
  struct Pin {
    std::string name;
    std::uint64_t generation = 0;
  };
  std::size_t capacity_;
  std::uint64_t next_generation_ = 0;
  std::unordered_map<std::uint32_t, Pin> pins_;
  // Oldest first; an entry whose generation is not its pin's is stale (the
  // address was pinned again since) and is skipped when evicting.
  std::deque<std::pair<std::uint32_t, std::uint64_t>> order_;
};

}  // namespace sandboxd::net
