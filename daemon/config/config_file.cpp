#include "daemon/config/config_file.hpp"

#include <algorithm>
#include <vector>

#include "daemon/config/setting_table.hpp"
#include "daemon/config/setting_values.hpp"
#include "daemon/service/private_files.hpp"

namespace sandboxd::config {

namespace {

constexpr std::string_view kBlanks = " \t";

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kBlanks) - first + 1);
}

// The line each setting of the table was set on; 0 for those the text leaves alone.
class SetOn {
 public:
  SetOn() : lines_(setting_table().size(), 0) {}
  std::size_t& operator[](const Setting& s) { return lines_[index(s)]; }
  std::size_t line_of(std::string_view key) const {
    const Setting* s = find_setting(key);
    return s ? lines_[index(*s)] : 0;
  }

 private:
  static std::size_t index(const Setting& s) { return static_cast<std::size_t>(&s - setting_table().data()); }

  std::vector<std::size_t> lines_;
};

// The value after '=': quoted, or up to a comment, blanks trimmed.
Expected<std::string, std::string> parse_value(std::string_view raw) {
  std::string out;
  std::string_view trimmed = raw.substr(std::min(raw.size(), raw.find_first_not_of(kBlanks)));
  if (!trimmed.empty() && trimmed[0] == '"') {
    std::size_t i = 1;
    for (;; ++i) {
      if (i >= trimmed.size()) return Unexpected{std::string("the quoted value has no closing quote")};
      char c = trimmed[i];
      if (c == '"') break;
      if (c == '\\') {
        if (i + 1 < trimmed.size() && (trimmed[i + 1] == '"' || trimmed[i + 1] == '\\')) {
          out += trimmed[++i];
          continue;
        }
        return Unexpected{std::string("in quotes a backslash may only come before \" or \\")};
      }
      out += c;
    }
    std::string_view after = trim(trimmed.substr(i + 1));
    if (!after.empty() && after[0] != '#') return Unexpected{std::string("unexpected text after the closing quote")};
  } else {
    std::size_t end = raw.size();
    for (std::size_t i = 1; i < raw.size(); ++i) {
      if (raw[i] == '#' && is_blank(raw[i - 1])) {
        end = i;
        break;
      }
    }
    out = std::string(trim(raw.substr(0, end)));
  }
  for (char c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return Unexpected{std::string("control characters are not allowed in values")};
  }
  return out;
}

std::string at_line(std::size_t line) { return "line " + std::to_string(line) + ": "; }

// A sandbox's default must be one it could ask for. The message names the
// line of whichever of the two keys the text set.
Expected<void, std::string> check_default_within_max(const SetOn& set_on, std::string_view def_key, unsigned def,
                                                     std::string_view max_key, unsigned max) {
  if (def <= max) return {};
  std::size_t def_line = set_on.line_of(def_key);
  std::size_t max_line = set_on.line_of(max_key);
  const std::string d(def_key);
  const std::string m(max_key);
  if (def_line != 0) {
    return Unexpected{at_line(def_line) + d + ": " + std::to_string(def) + " is more than " + m + " (" +
                      std::to_string(max) + ")"};
  }
  if (max_line != 0) {
    return Unexpected{at_line(max_line) + m + ": " + std::to_string(max) + " is less than " + d + " (" +
                      std::to_string(def) + ")"};
  }
  return Unexpected{d + " (" + std::to_string(def) + ") is more than " + m + " (" + std::to_string(max) + ")"};
}

Expected<DaemonConfig, std::string> parse(std::string_view text, DaemonConfig config, SetOn& set_on) {
  std::size_t number = 0;
  std::size_t pos = 0;
  for (bool more = true; more;) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    more = nl != std::string_view::npos;
    if (more) pos = nl + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    std::string_view content = trim(line);
    if (content.empty() || content[0] == '#') continue;
    auto eq = content.find('=');
    if (eq == std::string_view::npos) return Unexpected{at_line(number) + "expected key = value"};
    std::string_view key = trim(content.substr(0, eq));
    if (key.empty()) return Unexpected{at_line(number) + "expected a key before '='"};
    const Setting* setting = find_setting(key);
    if (!setting) return Unexpected{at_line(number) + "unknown key '" + shown_in_message(key) + "'"};
    const std::string name(key);
    if (set_on[*setting] != 0) {
      return Unexpected{at_line(number) + "duplicate key '" + name + "' (first set on line " +
                        std::to_string(set_on[*setting]) + ")"};
    }
    set_on[*setting] = number;
    auto value = parse_value(content.substr(eq + 1));
    if (!value) return Unexpected{at_line(number) + name + ": " + value.error()};
    if (auto applied = setting->set(config, *value); !applied)
      return Unexpected{at_line(number) + name + ": " + applied.error()};
  }
  const session::ServiceConfig& service = config.service;
  if (auto c = check_default_within_max(set_on, "default_cpus", service.default_cpus, "max_cpus", service.max_cpus); !c)
    return Unexpected{c.error()};
  if (auto c = check_default_within_max(set_on, "default_memory_mib", service.default_memory_mib, "max_memory_mib",
                                        service.max_memory_mib);
      !c)
    return Unexpected{c.error()};
  return config;
}

}  // namespace

Expected<DaemonConfig, std::string> parse_daemon_config(std::string_view text, DaemonConfig base) {
  SetOn set_on;
  return parse(text, std::move(base), set_on);
}

Expected<DaemonConfig, std::string> load_daemon_config(const std::filesystem::path& file, DaemonConfig base) {
  auto content = service::read_small_file(file, kMaxConfigFileBytes);
  if (!content) return Unexpected{"config file: " + content.error().message};
  SetOn set_on;
  auto config = parse(content->bytes, std::move(base), set_on);
  if (!config) return Unexpected{file.string() + ": " + config.error()};
  // A token in a file others may read is a token they know.
  const std::size_t token_line = set_on.line_of("token");
  if (token_line != 0 && !config->access.token.empty() && (content->info.st_mode & 077) != 0) {
    return Unexpected{file.string() + ": line " + std::to_string(token_line) +
                      ": token: the file may be read by group or other; make it private with 'chmod 600 " +
                      file.string() + "', or use token_file"};
  }
  return config;
}

}  // namespace sandboxd::config
