// K=V arguments (--label, --env) as the JSON object of strings the protocol
// takes: split at the first '=', so values may hold '='; a later repeat of a
// key replaces the earlier one, as it would in a shell's environment.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::ctl {

// `option` names the flag in the error, e.g. "--label".
Expected<boost::json::object, std::string> parse_key_values(const std::vector<std::string>& items,
                                                            const std::string& option);

}  // namespace sandboxd::ctl
