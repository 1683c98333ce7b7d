#include "daemon/config/setting_flags.hpp"

namespace sandboxd::config {

namespace {

std::string help_of(const Setting& s) {
  std::string help(s.doc);
  help += " (" + s.accepts;
  if (auto fallback = s.default_text(); !fallback.empty()) help += "; default " + fallback;
  return help + ")";
}

// The check CLI11 runs on each value of the flag: the setting's own parser,
// on a scratch config. An empty result accepts.
CLI::Validator check_of(const Setting& s) {
  return CLI::Validator(
      [&s](std::string& text) {
        DaemonConfig scratch;
        auto set = s.set(scratch, text);
        return set ? std::string() : set.error();
      },
      "");
}

}  // namespace

void add_setting_flags(CLI::App& command, SettingFlags& flags) {
  for (const auto& s : setting_table()) {
    if (s.flag.empty()) continue;
    const std::string name(s.flag);
    if (s.flag_repeats) {
      command
          .add_option_function<std::vector<std::string>>(
              name,
              [&flags, &s](const std::vector<std::string>& values) {
                std::string list;
                for (const auto& v : values) list += (list.empty() ? "" : ",") + v;
                flags.given.emplace_back(&s, list);
              },
              help_of(s) + "; repeatable")
          ->check(check_of(s));
    } else {
      command
          .add_option_function<std::string>(
              name, [&flags, &s](const std::string& value) { flags.given.emplace_back(&s, value); }, help_of(s))
          ->check(check_of(s));
    }
  }
}

Expected<void, std::string> apply_setting_flags(const SettingFlags& flags, DaemonConfig& config) {
  for (const auto& [setting, text] : flags.given)
    if (auto set = setting->set(config, text); !set) return Unexpected{std::string(setting->flag) + ": " + set.error()};
  return {};
}

}  // namespace sandboxd::config
