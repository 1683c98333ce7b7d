// Reading members of the daemon's JSON answers without trusting their types:
// a member that is missing or of another type reads as nullopt, so a newer or
// misbehaving daemon makes the client print less, never crash.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::ctl {

std::optional<std::string> string_member(const boost::json::object& o, std::string_view key);
// Integers sent as int64, uint64, or doubles holding a whole number.
std::optional<std::int64_t> int_member(const boost::json::object& o, std::string_view key);
std::optional<bool> bool_member(const boost::json::object& o, std::string_view key);
const boost::json::object* object_member(const boost::json::object& o, std::string_view key);
const boost::json::array* array_member(const boost::json::object& o, std::string_view key);

}  // namespace sandboxd::ctl
