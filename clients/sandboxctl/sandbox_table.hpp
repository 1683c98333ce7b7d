// `sandboxctl ls`: Sandbox objects as an aligned table for people.
#pragma once

#include <boost/json/array.hpp>
#include <cstdint>
#include <string>

namespace sandboxd::ctl {

// "42s", "5m", "3h", "2d": the largest unit that fits, rounded down.
std::string format_age(std::int64_t milliseconds);

// Columns ID, STATE, IMAGE, CPUS, MEM, AGE, LABELS, one row per Sandbox
// object, each line ending in '\n'; AGE counts from created_at to `now_ms`
// (Unix milliseconds). Members that are missing print as "-"; labels as
// k=v pairs sorted by key, comma-separated.
std::string format_sandbox_table(const boost::json::array& sandboxes, std::int64_t now_ms);

}  // namespace sandboxd::ctl
