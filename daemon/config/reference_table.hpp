// The reference of the daemon's settings, as Markdown, generated from the
// setting table: one row per key with its default, what it accepts, its flag
// of `serve`, whether the hello reports it, and its doc line.
//
// It stands in daemon/config/README.md between the two marker lines below; a
// unit test compares that block with this function's text, so the document
// cannot drift from the table (when it has, the test writes the document as
// the table has it into the build tree).
#pragma once

#include <string>
#include <string_view>

namespace sandboxd::config {

inline constexpr std::string_view kReferenceBegin =
    "<!-- BEGIN settings reference: generated from daemon/config/setting_table.cpp by reference_table_markdown() -->";
inline constexpr std::string_view kReferenceEnd = "<!-- END settings reference -->";

// The table, without the marker lines; every line ends with '\n'.
std::string reference_table_markdown();

}  // namespace sandboxd::config
