#include "clients/sandboxctl/sandbox_table.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <vector>

#include "clients/sandboxctl/json_access.hpp"

namespace sandboxd::ctl {

namespace {

constexpr std::size_t kColumns = 7;
using Row = std::array<std::string, kColumns>;

std::string labels_of(const boost::json::object& sandbox) {
  const auto* labels = object_member(sandbox, "labels");
  if (labels == nullptr || labels->empty()) return "-";
  std::map<std::string, std::string> sorted;
  for (const auto& [key, value] : *labels)
    sorted[std::string(key)] = value.is_string() ? std::string(value.get_string()) : "?";
  std::string out;
  for (const auto& [key, value] : sorted) {
    if (!out.empty()) out += ',';
    out += key + "=" + value;
  }
  return out;
}

std::string or_dash(const std::optional<std::string>& s) { return s && !s->empty() ? *s : "-"; }
std::string or_dash(const std::optional<std::int64_t>& n) { return n ? std::to_string(*n) : "-"; }

Row row_of(const boost::json::value& item, std::int64_t now_ms) {
  if (!item.is_object()) return {"?", "-", "-", "-", "-", "-", "-"};
  const auto& s = item.get_object();
  auto memory = int_member(s, "memory_mib");
  auto created = int_member(s, "created_at");
  return {
      or_dash(string_member(s, "id")),
      or_dash(string_member(s, "state")),
      or_dash(string_member(s, "image")),
      or_dash(int_member(s, "cpus")),
      memory ? std::to_string(*memory) + "MiB" : "-",
      created ? format_age(std::max<std::int64_t>(0, now_ms - *created)) : "-",
      labels_of(s),
  };
}

}  // namespace

std::string format_age(std::int64_t milliseconds) {
  std::int64_t seconds = std::max<std::int64_t>(0, milliseconds / 1000);
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 60 * 60) return std::to_string(seconds / 60) + "m";
  if (seconds < 48 * 60 * 60) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string format_sandbox_table(const boost::json::array& sandboxes, std::int64_t now_ms) {
  std::vector<Row> rows{{"ID", "STATE", "IMAGE", "CPUS", "MEM", "AGE", "LABELS"}};
  for (const auto& item : sandboxes) rows.push_back(row_of(item, now_ms));
  std::array<std::size_t, kColumns> width{};
  for (const auto& row : rows)
    for (std::size_t c = 0; c < kColumns; ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < kColumns; ++c) {
      out += row[c];
      // The last column is not padded, so lines carry no trailing blanks.
      if (c + 1 < kColumns) out.append(width[c] - row[c].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace sandboxd::ctl
