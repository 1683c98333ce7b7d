#include "clients/sandboxctl/key_values.hpp"

namespace sandboxd::ctl {

Expected<boost::json::object, std::string> parse_key_values(const std::vector<std::string>& items,
                                                            const std::string& option) {
  boost::json::object out;
  for (const auto& item : items) {
    auto equals = item.find('=');
    if (equals == std::string::npos || equals == 0)
      return Unexpected{option + " " + item + ": expected KEY=VALUE"};
    out[item.substr(0, equals)] = item.substr(equals + 1);
  }
  return out;
}

}  // namespace sandboxd::ctl
