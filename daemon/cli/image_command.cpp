#include "daemon/cli/image_command.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>

#include "daemon/cli/run_command.hpp"
#include "daemon/service/auth_token.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/image_store.hpp"

extern char** environ;

namespace sandboxd::cli {

namespace json = boost::json;

namespace {

std::uintmax_t size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

std::string megabytes(std::uintmax_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

std::filesystem::path store_root(const std::string& given) {
  return given.empty() ? service::default_image_store() : std::filesystem::path(given);
}

// A path compared as the file system sees it (symbolic links, "..").
std::filesystem::path resolved(const std::filesystem::path& p) {
  std::error_code ec;
  auto out = std::filesystem::weakly_canonical(p, ec);
  return ec ? p.lexically_normal() : out;
}

// The roots the daemon searches, the store last unless it is one of them
// already (serve_command does the same).
std::vector<std::filesystem::path> roots_with_store(const std::filesystem::path& store) {
  auto roots = vm::default_image_roots();
  if (store.empty()) return roots;
  auto same = [&](const std::filesystem::path& root) { return resolved(root) == resolved(store); };
  if (std::none_of(roots.begin(), roots.end(), same)) roots.push_back(store);
  return roots;
}

// What find_guest_image takes for an image, damaged or not: a name held here
// hides the same name in every later root.
bool holds_image(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_regular_file(dir / "vmlinuz", ec) &&
         std::filesystem::is_regular_file(dir / "initramfs.cpio", ec) &&
         std::filesystem::is_regular_file(dir / "manifest.json", ec);
}

const char* origin_name(const vm::ImageOrigin& origin) {
  switch (origin.kind) {
    case vm::ImageOrigin::Kind::kCheckpoint:
      return "checkpoint";
    case vm::ImageOrigin::Kind::kBuilt:
      return "built";
    case vm::ImageOrigin::Kind::kOther:
      break;
  }
  return nullptr;
}

json::object describe(const vm::GuestImage& image) {
  auto dir = image.kernel.parent_path();
  json::object item{
      {"name", image.name}, {"directory", dir.string()}, {"kind", image.layers.empty() ? "initramfs" : "layered"}};
  std::uintmax_t total = size_or_zero(image.kernel) + size_or_zero(image.initramfs);
  json::array layers;
  for (const auto& layer : image.layers) {
    layers.push_back(json::object{{"name", layer.name}, {"fs", layer.fs}, {"size", layer.size}});
    total += layer.size;
  }
  item["layers"] = std::move(layers);
  item["size"] = total;
  if (const char* origin = origin_name(vm::read_image_origin(dir))) item["origin"] = origin;
  return item;
}

std::string layer_names(const json::object& item) {
  std::string names;
  for (const auto& layer : item.at("layers").as_array())
    names += (names.empty() ? "" : "+") + std::string(layer.as_object().at("name").as_string());
  return names.empty() ? "-" : names;
}

}  // namespace

int image_list_command(const ImageListOptions& options) {
  auto roots = roots_with_store(store_root(options.image_store));
  // Names in root order: the first root holding a name is the one booted.
  // Dot-directories are a store's work in progress, never images.
  std::set<std::string> names;
  for (const auto& root : roots) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec))
      if (entry.path().filename().string().front() != '.' && entry.is_directory(ec) &&
          std::filesystem::exists(entry.path() / "manifest.json", ec))
        names.insert(entry.path().filename().string());
  }
  json::array listed;
  for (const auto& name : names) {
    auto image = vm::find_guest_image(name, roots);
    listed.push_back(image ? describe(*image) : json::object{{"name", name}, {"problem", image.error()}});
  }
  if (options.json) {
    std::cout << json::serialize(listed) << "\n";
  } else {
    std::printf("%-16s %-10s %-24s %10s  %-10s  %s\n", "NAME", "KIND", "LAYERS", "SIZE", "ORIGIN", "DIRECTORY");
    for (const auto& v : listed) {
      const auto& item = v.as_object();
      std::string name(item.at("name").as_string());
      if (item.contains("problem")) {
        std::printf("%-16s %-10s %s\n", name.c_str(), "damaged", std::string(item.at("problem").as_string()).c_str());
        continue;
      }
      const json::value* origin = item.if_contains("origin");
      std::printf("%-16s %-10s %-24s %10s  %-10s  %s\n", name.c_str(), std::string(item.at("kind").as_string()).c_str(),
                  layer_names(item).c_str(), megabytes(item.at("size").to_number<std::uintmax_t>()).c_str(),
                  origin ? std::string(origin->as_string()).c_str() : "-",
                  std::string(item.at("directory").as_string()).c_str());
    }
  }
  if (listed.empty()) {
    std::cerr << "sandboxd-host: no guest images found; build them with 'meson compile -C build' or set "
                 "SANDBOXD_IMAGES\n";
    return kSandboxFailure;
  }
  return 0;
}

int image_remove_command(const ImageRemoveOptions& options) {
  std::filesystem::path root = store_root(options.image_store);
  if (root.empty()) {
    std::cerr << "sandboxd-host: no image store: give --image-store\n";
    return kSandboxFailure;
  }
  vm::ImageStore store(root);
  int status = 0;
  for (const auto& name : options.names) {
    auto removed = store.remove(name, std::nullopt);
    if (removed && *removed) {
      std::cout << name << "\n";
      continue;
    }
    status = kSandboxFailure;
    if (!removed) {
      std::cerr << "sandboxd-host: " << name << ": " << removed.error() << "\n";
    } else if (vm::find_guest_image(name, vm::default_image_roots())) {
      std::cerr << "sandboxd-host: " << name << ": not a checkpoint image nor a built one in " << root.string()
                << " (the build tree's images belong to the build that made them)\n";
    } else {
      std::cerr << "sandboxd-host: " << name << ": no such image in " << root.string() << "\n";
    }
  }
  return status;
}

namespace {

namespace fs = std::filesystem;

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : fallback;
}

// The builder's parts, the environment's over the configured ones; an error
// says which is missing and how to name it.
Expected<ImageBuilderPaths, std::string> builder_paths(const ImageBuilderPaths& configured) {
  ImageBuilderPaths paths;
  paths.builder = env_or("SANDBOXD_IMAGE_BUILDER", configured.builder);
  std::string beside = std::getenv("SANDBOXD_IMAGE_BUILDER") && !paths.builder.empty()
                           ? (fs::path(paths.builder).parent_path() / "images.json").string()
                           : configured.shipped_config;
  paths.shipped_config = env_or("SANDBOXD_IMAGE_CONFIG", beside);
  paths.agent = env_or("SANDBOXD_AGENT", configured.agent);
  struct Part {
    const std::string& path;
    const char* what;
    const char* variable;
  };
  for (const Part& part : {Part{paths.builder, "the image builder (image/build_image.py)", "SANDBOXD_IMAGE_BUILDER"},
                           Part{paths.shipped_config, "the shipped image/images.json", "SANDBOXD_IMAGE_CONFIG"},
                           Part{paths.agent, "the static guest agent (guest/sandbox-agent)", "SANDBOXD_AGENT"}}) {
    std::error_code ec;
    if (part.path.empty())
      return Unexpected{std::string(part.what) + " is not known to this sandboxd-host: set " + part.variable};
    if (!fs::is_regular_file(part.path, ec))
      return Unexpected{std::string(part.what) + " is not at " + part.path +
                        ": build it ('meson compile -C build') or set " + part.variable};
  }
  return paths;
}

// Runs argv as a child and waits for it. While it runs, ^C and ^\ reach it
// (the terminal signals the whole process group) and not this process, which
// stays to clean up after it.
Expected<int, std::string> run_child(const std::vector<std::string>& argv, bool stdout_to_stderr) {
  std::vector<char*> cargv;
  for (const auto& arg : argv) cargv.push_back(const_cast<char*>(arg.c_str()));
  cargv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_to_stderr) posix_spawn_file_actions_adddup2(&actions, 2, 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGQUIT);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);

  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_int {};
  struct sigaction old_quit {};
  ::sigaction(SIGINT, &ignore, &old_int);
  ::sigaction(SIGQUIT, &ignore, &old_quit);
  pid_t pid = -1;
  int spawned = ::posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  int status = 0;
  if (spawned == 0)
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGQUIT, &old_quit, nullptr);
  if (spawned != 0) return Unexpected{"cannot run " + argv[0] + ": " + std::strerror(spawned)};
  return status;
}

constexpr std::string_view kReserved[] = {"mini", "qga"};

}  // namespace

int image_build_command(const ImageBuildOptions& options, const ImageBuilderPaths& configured) {
  auto fail = [](const std::string& why) {
    std::cerr << "sandboxd-host: image build: " << why << "\n";
    return kSandboxFailure;
  };
  const std::string& name = options.name;
  if (!vm::valid_checkpoint_name(name))
    return fail("'" + name + "' is not an image name (1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)");
  if (std::find(std::begin(kReserved), std::end(kReserved), name) != std::end(kReserved))
    return fail("'" + name + "' is reserved for the initramfs-only image the build tree makes");
  fs::path root = store_root(options.image_store);
  if (root.empty()) return fail("no image store: give --image-store");
  root = fs::absolute(root);

  // The daemon boots the first root that holds a name; the store comes after
  // the roots listed before it (after all of them when it is not one).
  auto roots = vm::default_image_roots();
  auto store_at =
      std::find_if(roots.begin(), roots.end(), [&](const fs::path& r) { return resolved(r) == resolved(root); });
  for (auto r = roots.begin(); r != store_at; ++r)
    if (holds_image(*r / name))
      return fail("an image '" + name + "' is already in " + (*r / name).string() +
                  ", which comes before the image store " + root.string() +
                  " when images are looked up, so it is what a sandbox naming '" + name +
                  "' would boot; choose another name");
  if (vm::read_image_origin(root / name).kind == vm::ImageOrigin::Kind::kCheckpoint)
    return fail("'" + name + "' in " + root.string() + " is a checkpoint image; remove it first (" +
                "'sandboxd-host image rm " + name + "') or choose another name");
  if (::geteuid() != 0)
    return fail(
        "building an image needs root (mmdebstrap builds the layers' Debian systems as root): run it with sudo");

  auto paths = builder_paths(configured);
  if (!paths) return fail(paths.error());
  vm::ImageStore store(root);
  auto work = store.begin_build();
  if (!work) return fail(work.error());

  std::vector<std::string> argv{"python3", paths->builder, "--agent",  paths->agent,
                                "--cache", options.cache,  "--name",   name,
                                "--out",   work->string(), "--layers", paths->shipped_config};
  if (!options.config.empty()) {
    argv.push_back("--layers");
    argv.push_back(options.config);
  }
  auto status = run_child(argv, options.json);
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    store.abandon(*work);
    std::string why = !status                ? status.error()
                      : WIFSIGNALED(*status) ? "the builder was killed by signal " + std::to_string(WTERMSIG(*status))
                                             : "the builder failed (exit " + std::to_string(WEXITSTATUS(*status)) + ")";
    return fail(why + "; nothing was added to " + root.string());
  }

  bool replaced = false;
  auto image = store.install_built(name, *work, &replaced);
  if (!image) return fail(image.error() + "; nothing was added to " + root.string());
  json::object item = describe(*image);
  item["replaced"] = replaced;
  bool searched = store_at != roots.end();
  if (options.json) {
    std::cout << json::serialize(item) << "\n";
    return 0;
  }
  std::cout << "image '" << name << "' (" << layer_names(item) << ", "
            << megabytes(item.at("size").to_number<std::uintmax_t>()) << ") is in "
            << image->kernel.parent_path().string() << (replaced ? ", replacing the older build" : "") << "\n";
  if (!searched)
    std::cout << "(not a default image root: 'sandboxd-host run' finds it with SANDBOXD_IMAGES=" << root.string()
              << ", 'image list' with --image-store, the daemon with image_store = " << root.string() << ")\n";
  return 0;
}

}  // namespace sandboxd::cli
