#include "daemon/service/runtime_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "daemon/service/private_files.hpp"

namespace sandboxd::service {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr int kRecordVersion = 1;
constexpr std::size_t kMaxRecordBytes = 1u << 20;
constexpr std::string_view kRecordFile = "record.json";
constexpr auto kKillWait = std::chrono::seconds(5);
constexpr auto kKillPoll = std::chrono::milliseconds(10);

std::string errno_text(int e) { return std::strerror(e); }

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The fields of /proc/<pid>/stat after the command name, which is in
// parentheses and may itself hold blanks and parentheses; the first is field 3.
std::optional<std::vector<std::string>> stat_fields(int pid) {
  if (pid <= 0) return std::nullopt;
  auto stat = read_small_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat) return std::nullopt;
  const std::string& text = stat->bytes;
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> fields;
  std::size_t at = close + 1;
  while (at < text.size()) {
    auto start = text.find_first_not_of(" \n", at);
    if (start == std::string::npos) break;
    auto end = text.find_first_of(" \n", start);
    fields.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    at = end == std::string::npos ? text.size() : end;
  }
  return fields;
}

// A zombie holds no memory, no descriptors and no sockets any more: as far
// as cleaning up is concerned it is gone (its parent, not we, reaps it).
bool process_gone(int pid, std::uint64_t start_ticks) {
  auto fields = stat_fields(pid);
  if (!fields || fields->empty()) return true;
  if ((*fields)[0] == "Z" || (*fields)[0] == "X" || (*fields)[0] == "x") return true;
  return process_start_ticks(pid) != start_ticks;
}

// Changes with every boot; with it a record from before a reboot never
// matches a process of this one, even where the runtime dir survived.
const std::string& boot_id() {
  static const std::string id = [] {
    auto file = read_small_file("/proc/sys/kernel/random/boot_id", 256);
    if (!file) return std::string();
    std::string text = std::move(file->bytes);
    text.erase(text.find_last_not_of(" \n") + 1);
    return text;
  }();
  return id;
}

// A directory reconcile will act on must be ours alone: whoever can write in
// it chooses which processes we kill and which files we delete.
Expected<void, std::string> check_private_dir(const fs::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Unexpected{"cannot stat " + dir.string() + ": " + errno_text(errno)};
  if (!S_ISDIR(st.st_mode)) return Unexpected{dir.string() + " is not a directory"};
  if (st.st_uid != ::geteuid()) {
    return Unexpected{"runtime dir " + dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                      ", not to this user (uid " + std::to_string(::geteuid()) + ")"};
  }
  if ((st.st_mode & 022) != 0) {
    return Unexpected{"runtime dir " + dir.string() + " may be written by group or other (mode " +
                      octal_mode(st.st_mode) + "); make it private with 'chmod 700 " + dir.string() + "'"};
  }
  return {};
}

std::string record_json(const SandboxRecord& r) {
  json::array files;
  for (const auto& f : r.files) files.emplace_back(f.string());
  json::object o;
  o["version"] = kRecordVersion;
  o["sandbox_id"] = r.sandbox_id;
  o["boot_id"] = boot_id();
  o["qemu_pid"] = r.qemu_pid;
  o["qemu_start_ticks"] = r.qemu_start_ticks;
  o["owner"] = r.owner;
  o["files"] = std::move(files);
  return json::serialize(o) + "\n";
}

struct StoredRecord {
  SandboxRecord record;
  std::string boot_id;
};

const json::string* string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v ? v->if_string() : nullptr;
}

Expected<StoredRecord, std::string> parse_record(std::string_view text) {
  json::parse_options options;
  // File names are bytes, not necessarily UTF-8, and are written as they are.
  options.allow_invalid_utf8 = true;
  json::error_code ec;
  json::value v = json::parse(text, ec, {}, options);
  if (ec) return Unexpected{"not JSON (" + ec.message() + ")"};
  const json::object* o = v.if_object();
  if (!o) return Unexpected{std::string("not a JSON object")};

  const json::value* version = o->if_contains("version");
  if (!version || !version->is_int64() || version->get_int64() != kRecordVersion)
    return Unexpected{std::string("no version or an unknown one")};
  StoredRecord out;
  const json::string* id = string_field(*o, "sandbox_id");
  const json::string* boot = string_field(*o, "boot_id");
  const json::string* owner = string_field(*o, "owner");
  if (!id || !boot || !owner) return Unexpected{std::string("sandbox_id, boot_id or owner missing or not a string")};
  out.record.sandbox_id = std::string(*id);
  out.boot_id = std::string(*boot);
  out.record.owner = std::string(*owner);

  const json::value* pid = o->if_contains("qemu_pid");
  if (!pid || !pid->is_int64() || pid->get_int64() < 0 || pid->get_int64() > INT_MAX)
    return Unexpected{std::string("qemu_pid missing or not a pid")};
  out.record.qemu_pid = static_cast<int>(pid->get_int64());
  const json::value* ticks = o->if_contains("qemu_start_ticks");
  if (!ticks) return Unexpected{std::string("qemu_start_ticks missing")};
  out.record.qemu_start_ticks = ticks->to_number<std::uint64_t>(ec);
  if (ec || !(ticks->is_int64() || ticks->is_uint64()))
    return Unexpected{std::string("qemu_start_ticks is not an unsigned integer")};

  const json::value* files = o->if_contains("files");
  if (!files || !files->is_array()) return Unexpected{std::string("files missing or not an array")};
  for (const auto& f : files->get_array()) {
    const json::string* s = f.if_string();
    if (!s || s->empty() || (*s)[0] != '/')
      return Unexpected{std::string("files holds something not an absolute path")};
    out.record.files.emplace_back(std::string(*s));
  }
  return out;
}

// Removes the files a record listed. Each is removed alone, never
// recursively: a record is not trusted to name a whole tree.
unsigned remove_listed(const std::vector<fs::path>& files, const std::string& id, std::vector<std::string>* problems) {
  unsigned removed = 0;
  for (const auto& f : files) {
    std::error_code ec;
    if (fs::remove(f, ec))
      ++removed;
    else if (ec && problems)
      problems->push_back("sandbox " + id + ": cannot remove " + f.string() + ": " + ec.message());
  }
  return removed;
}

unsigned remove_tree(const fs::path& path, std::vector<std::string>* problems) {
  std::error_code ec;
  auto n = fs::remove_all(path, ec);
  if (ec) {
    if (problems) problems->push_back("cannot remove " + path.string() + ": " + ec.message());
    return 0;
  }
  return static_cast<unsigned>(n);
}

// Everything in the sandbox's dir, then its record, then the dir: until the
// record goes, a crash leaves a record of what is still there. The record
// and the dir are not counted.
unsigned remove_sandbox_dir(const fs::path& dir, std::vector<std::string>* problems) {
  unsigned removed = 0;
  std::vector<fs::path> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
  for (const auto& e : entries)
    if (e.filename() != kRecordFile) removed += remove_tree(e, problems);
  // remove_all: a "record" that is a directory goes too.
  fs::remove_all(dir / kRecordFile, ec);
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && problems)
    problems->push_back("cannot remove " + dir.string() + ": " + errno_text(errno));
  return removed;
}

}  // namespace

bool is_valid_sandbox_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

std::string ReconcileReport::summary() const {
  if (sandboxes.empty() && files_removed == 0 && problems.empty()) return "nothing was left behind by an earlier run";
  std::string s = "cleaned up after an earlier run: " + plural(sandboxes.size(), "sandbox", "sandboxes") + ", " +
                  plural(processes_killed, "process", "processes") + " killed, " +
                  plural(files_removed, "file", "files") + " removed";
  if (!problems.empty()) {
    s += "; " + plural(problems.size(), "problem", "problems") + ":";
    for (std::size_t i = 0; i < problems.size(); ++i) s += (i == 0 ? " " : "; ") + problems[i];
  }
  return s;
}

Expected<std::unique_ptr<RuntimeDir>, std::string> RuntimeDir::open(const fs::path& given_root) {
  if (given_root.empty()) return Unexpected{std::string("no runtime dir given")};
  std::error_code ec;
  fs::path root = fs::absolute(given_root, ec);
  if (ec) root = given_root;
  if (auto made = make_private_dirs(root); !made) return Unexpected{"runtime dir: " + made.error()};
  if (auto ok = check_private_dir(root); !ok) return Unexpected{ok.error()};
  fs::path sandboxes = root / "sandboxes";
  if (::mkdir(sandboxes.c_str(), 0700) != 0 && errno != EEXIST)
    return Unexpected{"cannot create " + sandboxes.string() + ": " + errno_text(errno)};
  if (auto ok = check_private_dir(sandboxes); !ok) return Unexpected{ok.error()};

  fs::path lock_path = root / "daemon.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Unexpected{"cannot open " + lock_path.string() + ": " + errno_text(errno)};
  // The lock file is never removed: a daemon that unlinked it could leave a
  // second one locking a new file while a third still holds the old one.
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EINTR) continue;
    ::close(fd);
    if (e != EWOULDBLOCK) return Unexpected{"cannot lock " + lock_path.string() + ": " + errno_text(e)};
    std::string pid = "unknown";
    if (auto content = read_small_file(root / "daemon.pid", 64)) {
      std::string text = content->bytes;
      text.erase(text.find_last_not_of(" \n") + 1);
      if (!text.empty()) pid = text;
    }
    return Unexpected{"another sandboxd-host is running (pid " + pid + ") with runtime dir " + root.string()};
  }
  // Where a killed daemon listened is not where this one will.
  ::unlink((root / "endpoints.json").c_str());
  if (auto written = replace_file(root / "daemon.pid", std::to_string(::getpid()) + "\n"); !written) {
    ::close(fd);
    return Unexpected{written.error()};
  }
  return std::unique_ptr<RuntimeDir>(new RuntimeDir(std::move(root), fd));
}

RuntimeDir::RuntimeDir(fs::path root, int lock_fd) : root_(std::move(root)), lock_fd_(lock_fd) {}

RuntimeDir::~RuntimeDir() {
  // The pid file goes first: while it exists the lock is still held.
  ::unlink((root_ / "endpoints.json").c_str());
  ::unlink((root_ / "daemon.pid").c_str());
  ::close(lock_fd_);
}

ReconcileReport RuntimeDir::reconcile() {
  ReconcileReport report;
  const fs::path dir = root_ / "sandboxes";

  // Listed first and acted on after: entries removed while a directory is
  // being read may or may not be returned.
  std::vector<fs::path> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
  if (ec) report.problems.push_back("cannot list " + dir.string() + ": " + ec.message());

  struct Found {
    fs::path dir;
    SandboxRecord record;
    bool waiting = false;  // SIGKILL sent, not yet seen gone
    bool keep = false;     // its process may still run: leave the record for the next start
  };
  std::vector<Found> found;
  for (const auto& path : entries) {
    const std::string name = path.filename().string();
    std::error_code sec;
    // A symlink is a leftover like any other: removed, never followed.
    bool is_dir = fs::symlink_status(path, sec).type() == fs::file_type::directory;
    if (!is_dir || !is_valid_sandbox_id(name)) {
      report.files_removed += remove_tree(path, &report.problems);
      continue;
    }
    auto content = read_small_file(path / kRecordFile, kMaxRecordBytes);
    if (!content && content.error().code == ENOENT) {
      // Made before its record was written: nothing was started for it yet.
      report.files_removed += remove_sandbox_dir(path, &report.problems);
      continue;
    }
    Expected<StoredRecord, std::string> stored =
        content ? parse_record(content->bytes) : Unexpected{content.error().message};
    if (!stored) {
      report.problems.push_back("sandbox " + name + ": record unreadable (" + stored.error() +
                                "); its dir is removed, but a process or file it named may remain");
      report.files_removed += remove_sandbox_dir(path, &report.problems);
      continue;
    }
    if (stored->record.sandbox_id != name)
      report.problems.push_back("sandbox " + name + ": its record names sandbox '" + stored->record.sandbox_id + "'");
    report.sandboxes.push_back(name);
    Found f{path, std::move(stored->record)};
    const int pid = f.record.qemu_pid;
    const bool same_process = pid > 1 && pid != ::getpid() && stored->boot_id == boot_id() &&
                              f.record.qemu_start_ticks != 0 && process_start_ticks(pid) == f.record.qemu_start_ticks;
    if (same_process) {
      if (::kill(pid, SIGKILL) == 0) {
        ++report.processes_killed;
        f.waiting = true;
      } else if (errno != ESRCH) {
        report.problems.push_back("sandbox " + name + ": cannot kill pid " + std::to_string(pid) + ": " +
                                  errno_text(errno) + "; its record is kept");
        f.keep = true;
      }
    }
    found.push_back(std::move(f));
  }

  // All were signalled at once, so they die in parallel and the wait is paid
  // once.
  const auto deadline = std::chrono::steady_clock::now() + kKillWait;
  for (;;) {
    bool any = false;
    for (auto& f : found) {
      if (f.waiting && process_gone(f.record.qemu_pid, f.record.qemu_start_ticks)) f.waiting = false;
      any = any || f.waiting;
    }
    if (!any || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(kKillPoll);
  }

  for (auto& f : found) {
    if (f.waiting) {
      report.problems.push_back("sandbox " + f.dir.filename().string() + ": pid " + std::to_string(f.record.qemu_pid) +
                                " still runs 5 s after SIGKILL; its record is kept");
      continue;
    }
    if (f.keep) continue;
    report.files_removed += remove_listed(f.record.files, f.dir.filename().string(), &report.problems);
    report.files_removed += remove_sandbox_dir(f.dir, &report.problems);
  }
  if (!entries.empty()) sync_directory(dir);
  return report;
}

Expected<void, std::string> RuntimeDir::record(const SandboxRecord& r) {
  if (!is_valid_sandbox_id(r.sandbox_id))
    return Unexpected{std::string("invalid sandbox id (expected 1 to 64 of a-z, 0-9 and '-')")};
  if (r.qemu_pid < 0) return Unexpected{"sandbox " + r.sandbox_id + ": negative pid"};
  for (const auto& f : r.files) {
    if (!f.is_absolute())
      return Unexpected{"sandbox " + r.sandbox_id + ": file " + f.string() + " is not an absolute path"};
  }
  fs::path dir = sandbox_dir(r.sandbox_id);
  if (::mkdir(dir.c_str(), 0700) == 0) {
    sync_directory(dir.parent_path());
  } else if (errno != EEXIST) {
    return Unexpected{"cannot create " + dir.string() + ": " + errno_text(errno)};
  }
  if (auto written = replace_file(dir / kRecordFile, record_json(r)); !written) return Unexpected{written.error()};
  return {};
}

void RuntimeDir::forget(const std::string& sandbox_id) {
  if (!is_valid_sandbox_id(sandbox_id)) return;
  fs::path dir = sandbox_dir(sandbox_id);
  if (auto content = read_small_file(dir / kRecordFile, kMaxRecordBytes)) {
    if (auto stored = parse_record(content->bytes)) remove_listed(stored->record.files, sandbox_id, nullptr);
  }
  remove_sandbox_dir(dir, nullptr);
  sync_directory(dir.parent_path());
}

Expected<void, std::string> RuntimeDir::publish_endpoints(std::string_view json) {
  return replace_file(root_ / "endpoints.json", json);
}

fs::path RuntimeDir::sandbox_dir(const std::string& sandbox_id) const {
  if (!is_valid_sandbox_id(sandbox_id)) return {};
  return root_ / "sandboxes" / sandbox_id;
}

std::uint64_t process_start_ticks(int pid) {
  auto fields = stat_fields(pid);
  // Field 22 is the 20th after the command name.
  if (!fields || fields->size() < 20) return 0;
  const std::string& s = (*fields)[19];
  std::uint64_t ticks = 0;
  auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), ticks);
  if (err != std::errc() || end != s.data() + s.size()) return 0;
  return ticks;
}

fs::path default_runtime_dir() {
  if (::geteuid() == 0) return "/run/sandboxd";
  // The XDG spec has relative paths in its variables ignored.
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && xdg[0] == '/') return fs::path(xdg) / "sandboxd";
  return "/tmp/sandboxd-" + std::to_string(::geteuid());
}

}  // namespace sandboxd::service
