#include "daemon/config/reference_table.hpp"

#include "daemon/config/setting_table.hpp"

namespace sandboxd::config {

namespace {

// Prose in a table cell: a '|' would end the cell, a '<' start an HTML tag
// and a '*' emphasis.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '|':
        out += "\\|";
        break;
      case '<':
        out += "&lt;";
        break;
      case '*':
        out += "\\*";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string code(std::string_view text) { return "`" + std::string(text) + "`"; }

}  // namespace

std::string reference_table_markdown() {
  std::string out = "| key | default | accepts | flag | in hello | meaning |\n|---|---|---|---|---|---|\n";
  for (const auto& s : setting_table()) {
    std::string fallback = s.default_text();
    out += "| " + code(s.key) + " | " + (fallback.empty() ? std::string("(empty)") : code(fallback)) + " | " +
           cell(s.accepts) + " | " + (s.flag.empty() ? std::string() : code(s.flag)) +
           (s.flag_repeats ? " (repeatable)" : "") + " | " + (s.in_hello ? "yes" : "") + " | " + cell(s.doc) + " |\n";
  }
  return out;
}

}  // namespace sandboxd::config
