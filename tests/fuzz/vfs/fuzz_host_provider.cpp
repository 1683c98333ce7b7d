// The host provider's path resolution under hostile request sequences.
//
// A temporary directory holds the served root and, beside it, "outside" with
// a secret. Each input is read as a sequence of operations (lookup, mkdir,
// symlink, rename, link, open, read, write, unlink, ..., and the host itself
// swapping a directory for a symlink to the outside) on names drawn from a
// small alphabet that includes "..", "/", "x/.." and symlink targets such as
// "/", ".." and "../outside/secret". The target traps if any read returns
// the secret's bytes, if the outside directory changes in any way, or if
// anything appears beside the root or at "/" under one of the alphabet's
// names.
//
// The root is rebuilt before every input, so an input means the same thing
// whenever it runs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/vfs/host_provider.hpp"

namespace {

using namespace sandboxd;
using namespace sandboxd::vfs;
namespace fsys = std::filesystem;

constexpr std::string_view kSecret = "SECRET-5f2c9e1d-must-never-be-read";

const std::vector<std::string> kNames = {
    "a",          "b",       "dir",    "up", "abs", "sec", "..",  ".",     "/",    "x/..",
    "../outside", "outside", "secret", "d",  "new", "",    "a/b", "dir/b", "fifo", std::string("n\0ul", 4)};
const std::vector<std::string> kTargets = {
    "/", "..", "../outside/secret", "../outside", "../outside/d", "a", "dir/b", "../../..", "sec", "/tmp", "up/secret"};

std::string slurp(const fsys::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fsys::path& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

std::map<std::string, std::string> describe(const fsys::path& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (fsys::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::string what =
        std::to_string(st.st_mode) + ":" + std::to_string(st.st_uid) + ":" + std::to_string(st.st_nlink) + ":";
    if (S_ISREG(st.st_mode)) what += slurp(it->path());
    out[fsys::relative(it->path(), dir).string()] = what;
  }
  return out;
}

bool exists_at_slash(const std::string& name) {
  struct stat st {};
  return ::lstat(("/" + name).c_str(), &st) == 0;
}

struct World {
  fsys::path base, root, outside;
  std::map<std::string, std::string> outside_before;
  std::set<std::string> at_slash_before;
  int swaps = 0;

  World() {
    std::string pattern = (fsys::temp_directory_path() / "fuzz-host-provider-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    base = pattern;
    root = base / "root";
    outside = base / "outside";
    fsys::create_directories(outside / "d");
    spit(outside / "secret", kSecret);
    spit(outside / "d" / "secret", kSecret);
    spit(outside / "a", kSecret);
    outside_before = describe(outside);
    for (const auto& name : kNames)
      if (!name.empty() && name.find('/') == std::string::npos && exists_at_slash(name)) at_slash_before.insert(name);
  }
  ~World() {
    std::error_code ignored;
    fsys::remove_all(base, ignored);
  }

  void rebuild_root() {
    std::error_code ignored;
    fsys::remove_all(root, ignored);
    fsys::create_directories(root / "dir");
    spit(root / "a", "alpha");
    spit(root / "dir" / "b", "beta");
    fsys::create_symlink("../outside", root / "up");
    fsys::create_symlink("/", root / "abs");
    fsys::create_symlink("../outside/secret", root / "sec");
    fsys::create_symlink("../outside/d", root / "dir" / "d");
    swaps = 0;
  }

  void check() const {
    if (describe(outside) != outside_before) __builtin_trap();
    for (const auto& e : fsys::directory_iterator(base)) {
      auto name = e.path().filename().string();
      if (name != "root" && name != "outside") __builtin_trap();
    }
    for (const auto& name : kNames) {
      if (name.empty() || name.find('/') != std::string::npos || name.find('\0') != std::string::npos) continue;
      if (exists_at_slash(name) != (at_slash_before.count(name) != 0)) __builtin_trap();
    }
  }
};

World& world() {
  static World w;
  return w;
}

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  const std::string& name() { return kNames[byte() % kNames.size()]; }
  const std::string& target() { return kTargets[byte() % kTargets.size()]; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

bool holds_secret(const Bytes& data) {
  std::string_view text = as_chars(data);
  // Any long enough piece of it counts: a read at an offset still leaks.
  for (std::size_t start = 0; start + 8 <= kSecret.size(); ++start)
    if (text.find(kSecret.substr(start, 8)) != std::string_view::npos) return true;
  return false;
}

struct Session {
  HostProvider& p;
  std::vector<NodeId> nodes{wire::kRootNode};
  std::vector<std::pair<NodeId, Handle>> files;
  std::vector<std::pair<NodeId, Handle>> dirs;
  Caller caller{1000, 1000, 1};

  NodeId node(Input& in) {
    std::uint8_t b = in.byte();
    if (b == 0xff) return 987654321;  // never handed out
    return nodes[b % nodes.size()];
  }
  void keep(const Result<wire::Entry>& e) {
    if (e && nodes.size() < 256) nodes.push_back(e->node);
  }
  std::pair<NodeId, Handle> file(Input& in) {
    if (files.empty()) return {wire::kRootNode, 12345};
    return files[in.byte() % files.size()];
  }

  void step(Input& in) {
    World& w = world();
    switch (in.byte() % 20) {
      case 0:
        keep(p.lookup(node(in), in.name()));
        break;
      case 1:
        keep(p.mkdir(node(in), in.name(), 0755, caller));
        break;
      case 2: {
        NodeId at = node(in);
        const std::string& n = in.name();
        keep(p.symlink(at, n, in.target(), caller));
        break;
      }
      case 3: {
        NodeId from = node(in);
        const std::string& n = in.name();
        NodeId to = node(in);
        const std::string& m = in.name();
        static constexpr std::uint32_t kFlags[] = {0, RENAME_NOREPLACE, RENAME_EXCHANGE, 1u << 2, 3};
        (void)p.rename(from, n, to, m, kFlags[in.byte() % 5]);
        break;
      }
      case 4: {
        NodeId from = node(in);
        NodeId to = node(in);
        keep(p.link(from, to, in.name()));
        break;
      }
      case 5: {
        static constexpr std::uint32_t kOpen[] = {O_RDONLY,
                                                  O_RDWR,
                                                  O_WRONLY | O_TRUNC,
                                                  O_RDWR | O_APPEND,
                                                  O_PATH,
                                                  O_RDONLY | O_DIRECTORY,
                                                  O_RDWR | O_CREAT | O_EXCL};
        NodeId at = node(in);
        auto opened = p.open(at, kOpen[in.byte() % 7]);
        if (opened) files.emplace_back(at, opened->handle);
        break;
      }
      case 6: {
        auto [at, h] = file(in);
        auto data = p.read(at, h, in.byte() % 8, wire::kMaxData);
        if (data && holds_secret(*data)) __builtin_trap();
        break;
      }
      case 7:
        (void)p.unlink(node(in), in.name());
        break;
      case 8: {
        NodeId at = node(in);
        const std::string& n = in.name();
        auto made = p.create(at, n, 0644, in.byte() % 2 ? O_RDWR : O_RDWR | O_EXCL, caller);
        if (made) {
          nodes.push_back(made->entry.node);
          files.emplace_back(made->entry.node, made->open.handle);
        }
        break;
      }
      case 9: {
        auto [at, h] = file(in);
        (void)p.write(at, h, in.byte() % 8, as_bytes("fuzz"));
        break;
      }
      case 10: {
        NodeId at = node(in);
        auto opened = p.opendir(at);
        if (!opened) break;
        std::uint64_t offset = 0;
        for (int page = 0; page < 64; ++page) {
          auto entries = p.readdir(at, opened->handle, offset, 64 + in.byte());
          if (!entries || entries->empty()) break;
          offset = entries->back().next_offset;
        }
        (void)p.releasedir(at, opened->handle);
        break;
      }
      case 11:
        (void)p.readlink(node(in));
        break;
      case 12: {
        NodeId at = node(in);
        wire::Request r;
        r.set = in.byte();
        r.mode = 07777;
        r.size_to = in.byte() % 16;
        r.uid_to = 0;
        r.gid_to = 0;
        r.mtime_to = {1, 0};
        (void)p.setattr(at, r, caller);
        (void)p.getattr(at, wire::kNoHandle);
        break;
      }
      case 13: {
        static constexpr std::uint32_t kTypes[] = {S_IFREG, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK, 0};
        NodeId at = node(in);
        const std::string& n = in.name();
        keep(p.mknod(at, n, kTypes[in.byte() % 6] | 06777, 0x0103, caller));
        break;
      }
      case 14:
        (void)p.rmdir(node(in), in.name());
        break;
      case 15:
        p.forget(node(in), in.byte() % 3);
        break;
      case 16: {
        if (files.empty()) break;
        std::size_t i = in.byte() % files.size();
        (void)p.release(files[i].first, files[i].second);
        files.erase(files.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
      case 17: {
        // The host swaps a directory of the root for a symlink out of it.
        const char* dir = in.byte() % 2 ? "dir" : "new";
        std::error_code ec;
        if (w.swaps < 4 && fsys::is_directory(fsys::symlink_status(w.root / dir, ec))) {
          fsys::rename(w.root / dir, w.root / (std::string(dir) + ".was" + std::to_string(w.swaps++)), ec);
          fsys::create_symlink(in.byte() % 2 ? "../outside" : "../outside/d", w.root / dir, ec);
        }
        break;
      }
      case 18:
        (void)p.access(node(in), F_OK, caller);
        break;
      case 19:
        if (in.byte() % 8 == 0) {
          p.reset();
          files.clear();
        }
        break;
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  World& w = world();
  w.rebuild_root();
  {
    HostProvider::Options options;
    options.max_nodes = 64;
    options.max_handles = 16;
    options.max_listed_entries = 256;
    auto provider = HostProvider::open(w.root, options);
    if (!provider) std::abort();
    Session session{**provider};
    Input in(data, std::min<std::size_t>(size, 4096));
    for (int steps = 0; !in.done() && steps < 256; ++steps) session.step(in);
    // Whatever the guest did, every file it still holds open is checked too.
    for (auto [node, handle] : session.files) {
      auto bytes = session.p.read(node, handle, 0, wire::kMaxData);
      if (bytes && holds_secret(*bytes)) __builtin_trap();
    }
  }
  w.check();
  return 0;
}
