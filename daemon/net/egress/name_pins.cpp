#include "daemon/net/egress/name_pins.hpp"

namespace sandboxd::net {

void NamePins::pin(wire::Ipv4Address address, std::string_view name) {
  if (capacity_ == 0) return;
  std::uint64_t generation = ++next_generation_;
  Pin& entry = pins_[address.to_u32()];
  entry.name.assign(name);
  entry.generation = generation;
  order_.emplace_back(address.to_u32(), generation);
  while (pins_.size() > capacity_ || order_.size() > 2 * capacity_) {
    auto [key, gen] = order_.front();
    order_.pop_front();
    auto it = pins_.find(key);
    if (it != pins_.end() && it->second.generation == gen) pins_.erase(it);
  }
}

std::string_view NamePins::name_for(wire::Ipv4Address address) const {
  auto it = pins_.find(address.to_u32());
  return it == pins_.end() ? std::string_view{} : std::string_view(it->second.name);
}

void NamePins::clear() {
  pins_.clear();
  order_.clear();
}

}  // namespace sandboxd::net
