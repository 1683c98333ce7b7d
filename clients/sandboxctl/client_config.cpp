#include "clients/sandboxctl/client_config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "clients/sandboxctl/ws_url.hpp"

namespace sandboxd::ctl {

namespace {

constexpr std::string_view kBlanks = " \t\r\n";

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  auto last = s.find_last_not_of(kBlanks);
  return s.substr(first, last - first + 1);
}

std::optional<std::string> non_empty(const GetEnv& env, const std::string& name) {
  auto value = env(name);
  if (!value || value->empty()) return std::nullopt;
  return value;
}

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

struct ConfigFile {
  std::optional<std::string> url;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
};

Expected<ConfigFile, std::string> parse_config(const std::string& path, std::string_view text, const GetEnv& env) {
  ConfigFile out;
  std::size_t line_number = 0;
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (line.empty() || line.front() == '#') continue;
    auto where = path + ":" + std::to_string(line_number) + ": ";
    auto equals = line.find('=');
    if (equals == std::string_view::npos) return Unexpected{where + "expected 'key = value'"};
    std::string_view key = trim(line.substr(0, equals));
    std::string_view value = trim(line.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (value.empty()) return Unexpected{where + "empty value for '" + std::string(key) + "'"};
    if (key == "url") {
      out.url = std::string(value);
    } else if (key == "token") {
      out.token = std::string(value);
    } else if (key == "token_file") {
      std::string file(value);
      if (file.starts_with("~/")) {
        auto home = non_empty(env, "HOME");
        if (!home) return Unexpected{where + "token_file starts with ~/ but HOME is not set"};
        file = *home + file.substr(1);
      } else if (file.front() != '/') {
        file = directory_of(path) + "/" + file;
      }
      out.token_file = std::move(file);
    } else {
      return Unexpected{where + "unknown key '" + std::string(key) + "' (expected url, token or token_file)"};
    }
  }
  return out;
}

Expected<std::string, std::string> read_token(const std::string& path, const ReadFile& read_file) {
  auto content = read_file(path);
  if (content.error != 0) return Unexpected{"cannot read token file " + path + ": " + std::strerror(content.error)};
  auto token = trim(content.text);
  if (token.empty()) return Unexpected{"token file " + path + " is empty"};
  return std::string(token);
}

}  // namespace

std::vector<std::string> default_token_files(const GetEnv& env) {
  std::vector<std::string> files{"/var/lib/sandboxd/token"};
  if (auto state = non_empty(env, "XDG_STATE_HOME")) {
    files.push_back(*state + "/sandboxd/token");
  } else if (auto home = non_empty(env, "HOME")) {
    files.push_back(*home + "/.local/state/sandboxd/token");
  }
  return files;
}

std::string default_config_file(const GetEnv& env) {
  if (auto config = non_empty(env, "XDG_CONFIG_HOME")) return *config + "/sandboxd/client.conf";
  if (auto home = non_empty(env, "HOME")) return *home + "/.config/sandboxd/client.conf";
  return {};
}

Expected<ClientConfig, std::string> resolve_client_config(const ConfigFlags& flags, const GetEnv& env,
                                                          const ReadFile& read_file) {
  ConfigFile file;
  std::string config_path = flags.config_file ? *flags.config_file : default_config_file(env);
  if (!config_path.empty()) {
    auto content = read_file(config_path);
    if (content.error == 0) {
      auto parsed = parse_config(config_path, content.text, env);
      if (!parsed) return Unexpected{parsed.error()};
      file = std::move(*parsed);
    } else if (flags.config_file || content.error != ENOENT) {
      // A file the user named, or one that exists but cannot be read, is an
      // error: silently ignoring it would connect with the wrong settings.
      return Unexpected{"cannot read config file " + config_path + ": " + std::strerror(content.error)};
    }
  }

  ClientConfig out;
  if (flags.url) {
    out.url = *flags.url;
  } else if (auto url = non_empty(env, "SANDBOXD_URL")) {
    out.url = *url;
  } else if (file.url) {
    out.url = *file.url;
  } else {
    out.url = std::string(kDefaultUrl);
  }

  // The first level that names a token or a token file decides; within a
  // level the token itself wins over its file.
  struct Source {
    std::optional<std::string> token;
    std::optional<std::string> token_file;
    std::string name;
  };
  const Source sources[] = {
      {flags.token, flags.token_file, "--token"},
      {non_empty(env, "SANDBOXD_TOKEN"), non_empty(env, "SANDBOXD_TOKEN_FILE"), "SANDBOXD_TOKEN"},
      {file.token, file.token_file, config_path},
  };
  for (const auto& source : sources) {
    if (source.token) {
      if (trim(*source.token).empty()) return Unexpected{"the token from " + source.name + " is empty"};
      out.token = std::string(trim(*source.token));
      out.token_source = source.name;
      return out;
    }
    if (source.token_file) {
      auto token = read_token(*source.token_file, read_file);
      if (!token) return Unexpected{token.error()};
      out.token = std::move(*token);
      out.token_source = *source.token_file;
      return out;
    }
  }
  for (const auto& path : default_token_files(env)) {
    auto token = read_token(path, read_file);
    if (token) {
      out.token = std::move(*token);
      out.token_source = path;
      return out;
    }
  }
  return out;
}

GetEnv process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

ReadFile file_system_reader() {
  return [](const std::string& path) {
    // Config and token files are a few lines; a bigger one is not ours.
    constexpr std::size_t kMaxBytes = 1 << 20;
    ReadResult out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      out.error = errno;
      return out;
    }
    char buffer[4096];
    for (;;) {
      ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        out.error = errno;
        break;
      }
      if (n == 0) break;
      out.text.append(buffer, static_cast<std::size_t>(n));
      if (out.text.size() > kMaxBytes) {
        out.error = EFBIG;
        break;
      }
    }
    ::close(fd);
    if (out.error != 0) out.text.clear();
    return out;
  };
}

}  // namespace sandboxd::ctl
