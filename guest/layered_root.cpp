#include "guest/layered_root.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sandboxd::guest {

namespace {

constexpr const char* kNewRoot = "/newroot";
constexpr const char* kUpperFs = "/overlay";
constexpr const char* kUpperDiskSerial = "upper";
// Mounted in the initramfs before the switch and moved, not remounted, so
// whatever already uses them (the console, the DHCP lease's files) carries on.
constexpr const char* kCarriedMounts[] = {"/proc", "/sys", "/dev", "/run", "/tmp"};

bool plain_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!word(s.front())) return false;
  for (char c : s)
    if (!word(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string read_small_file(const std::filesystem::path& path, std::size_t limit) {
  std::ifstream f(path, std::ios::binary);
  std::string text(limit, '\0');
  f.read(text.data(), static_cast<std::streamsize>(limit));
  text.resize(static_cast<std::size_t>(f.gcount()));
  return text;
}

}  // namespace

LayerList parse_layer_list(std::string_view text) {
  std::vector<LayerSpec> layers;
  std::size_t line_number = 0;
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++line_number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto where = "line " + std::to_string(line_number) + ": ";
    std::size_t space = line.find(' ');
    if (space == std::string_view::npos) return Unexpected{where + "expected \"name fs\""};
    std::string_view name = line.substr(0, space), fs = line.substr(space + 1);
    if (!plain_name(name)) return Unexpected{where + "layer name is not a plain word"};
    if (fs != "squashfs" && fs != "erofs") return Unexpected{where + "file system must be squashfs or erofs"};
    if (layers.size() == kMaxLayers) return Unexpected{"more than " + std::to_string(kMaxLayers) + " layers"};
    layers.push_back({std::string(name), std::string(fs)});
  }
  return layers;
}

std::optional<LayerList> layers_from_cmdline(std::string_view cmdline) {
  constexpr std::string_view kKey = "sandbox.layers=";
  while (!cmdline.empty()) {
    std::size_t space = cmdline.find(' ');
    std::string_view word = cmdline.substr(0, space);
    cmdline = space == std::string_view::npos ? std::string_view{} : cmdline.substr(space + 1);
    while (!word.empty() && (word.back() == '\n' || word.back() == '\r')) word.remove_suffix(1);
    if (word.substr(0, kKey.size()) != kKey) continue;
    // "a:fs,b:fs" is the layer list's "a fs\nb fs\n", held to the same rules.
    std::string text(word.substr(kKey.size()));
    for (char& c : text) {
      if (c == '#') return LayerList(Unexpected{std::string("sandbox.layers: not a layer list")});
      if (c == ',') c = '\n';
      if (c == ':') c = ' ';
    }
    LayerList layers = parse_layer_list(text);
    if (layers && layers->empty()) return LayerList(Unexpected{std::string("sandbox.layers: no layers")});
    return layers;
  }
  return std::nullopt;
}

Expected<UpperStore, std::string> upper_store_from_cmdline(std::string_view cmdline) {
  constexpr std::string_view kKey = "sandbox.upper=";
  UpperStore store = UpperStore::kTmpfs;
  while (!cmdline.empty()) {
    std::size_t space = cmdline.find(' ');
    std::string_view word = cmdline.substr(0, space);
    cmdline = space == std::string_view::npos ? std::string_view{} : cmdline.substr(space + 1);
    while (!word.empty() && (word.back() == '\n' || word.back() == '\r')) word.remove_suffix(1);
    if (!word.starts_with(kKey)) continue;
    std::string_view value = word.substr(kKey.size());
    if (value == "disk") store = UpperStore::kDisk;
    else if (value == "tmpfs") store = UpperStore::kTmpfs;
    else return Unexpected{"sandbox.upper: expected disk or tmpfs, not '" + std::string(value.substr(0, 32)) + "'"};
  }
  return store;
}

std::string layer_dir(std::size_t i) { return "/layers/" + std::to_string(i); }

std::string overlay_options(std::size_t layer_count, const std::string& upper, const std::string& work) {
  std::string lower;
  for (std::size_t i = layer_count; i-- > 0;) {
    if (!lower.empty()) lower += ':';
    lower += layer_dir(i);
  }
  return "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
}

std::map<std::string, std::string> block_devices_by_serial(const std::string& sys_block) {
  std::map<std::string, std::string> devices;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(sys_block, ec)) {
    std::string device = entry.path().filename().string();
    if (device.rfind("vd", 0) != 0) continue;
    // virtio-blk's serial is at most 20 bytes; the kernel pads nothing but
    // may end it with a newline.
    std::string serial = read_small_file(entry.path() / "serial", 64);
    while (!serial.empty() && (serial.back() == '\n' || serial.back() == '\0' || serial.back() == ' '))
      serial.pop_back();
    if (!serial.empty()) devices.emplace(serial, device);
  }
  return devices;
}

Expected<void, std::string> enter_layered_root(const std::vector<LayerSpec>& layers, UpperStore upper_store) {
  if (layers.empty()) return Unexpected{std::string("the image lists no layers")};

  // The disks were probed when virtio_blk loaded, but their /dev nodes and
  // sysfs entries may lag a little behind; nothing announces them (no udev).
  std::map<std::string, std::string> devices;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    devices = block_devices_by_serial("/sys/block");
    auto present = [&](const std::string& serial) {
      auto it = devices.find(serial);
      return it != devices.end() && ::access(("/dev/" + it->second).c_str(), F_OK) == 0;
    };
    bool all = upper_store != UpperStore::kDisk || present(kUpperDiskSerial);
    for (std::size_t i = 0; i < layers.size() && all; ++i) all = present("layer" + std::to_string(i));
    if (all) break;
    if (std::chrono::steady_clock::now() > give_up)
      return Unexpected{"the layer disks did not appear within 10 s (" + std::to_string(devices.size()) +
                        " virtio disk(s) with a serial)"};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  ::mkdir("/layers", 0755);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    std::string dir = layer_dir(i), device = "/dev/" + devices.at("layer" + std::to_string(i));
    ::mkdir(dir.c_str(), 0755);
    if (::mount(device.c_str(), dir.c_str(), layers[i].fs.c_str(), MS_RDONLY, nullptr) != 0)
      return Unexpected{errno_text("mount layer '" + layers[i].name + "' (" + device + ", " + layers[i].fs + ")")};
  }

  ::mkdir(kUpperFs, 0755);
  if (upper_store == UpperStore::kDisk) {
    // Made by the daemon's mke2fs on a new sparse file: its inode tables read
    // as zeros already, so there is nothing to initialise in the background.
    // discard gives what the sandbox deletes back to the host's file system.
    std::string device = "/dev/" + devices.at(kUpperDiskSerial);
    if (::mount(device.c_str(), kUpperFs, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME, "discard,noinit_itable") != 0)
      return Unexpected{errno_text("mount the writable layer's disk (" + device + ", ext4)")};
  } else if (::mount("upper", kUpperFs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    return Unexpected{errno_text("mount the writable layer's tmpfs")};
  }
  std::string upper = std::string(kUpperFs) + "/upper", work = std::string(kUpperFs) + "/work";
  ::mkdir(upper.c_str(), 0755);
  ::mkdir(work.c_str(), 0755);
  ::mkdir(kNewRoot, 0755);
  std::string options = overlay_options(layers.size(), upper, work);
  if (::mount("overlay", kNewRoot, "overlay", 0, options.c_str()) != 0)
    return Unexpected{errno_text("mount the overlay (" + options + ")")};

  std::vector<std::string> moved;
  auto move_back = [&] {
    for (auto it = moved.rbegin(); it != moved.rend(); ++it)
      (void)::mount((kNewRoot + *it).c_str(), it->c_str(), nullptr, MS_MOVE, nullptr);
  };
  for (const char* mount_point : kCarriedMounts) {
    std::string target = kNewRoot + std::string(mount_point);
    ::mkdir(target.c_str(), std::strcmp(mount_point, "/tmp") == 0 ? 01777 : 0755);
    if (::mount(mount_point, target.c_str(), nullptr, MS_MOVE, nullptr) != 0) {
      std::string failure = errno_text(std::string("move ") + mount_point + " into the new root");
      move_back();
      return Unexpected{failure};
    }
    moved.push_back(mount_point);
  }

  // What the sandbox wrote, for checkpoints to read (never to write: changing
  // an upper directory under a mounted overlay is undefined).
  std::string upper_view = std::string(kNewRoot) + "/run/sandbox/upper";
  ::mkdir((std::string(kNewRoot) + "/run/sandbox").c_str(), 0700);
  ::mkdir(upper_view.c_str(), 0755);
  if (::mount(upper.c_str(), upper_view.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
      ::mount(nullptr, upper_view.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    std::string failure = errno_text("bind the upper directory at /run/sandbox/upper");
    (void)::umount2(upper_view.c_str(), MNT_DETACH);
    move_back();
    return Unexpected{failure};
  }

  // DHCP wrote the initramfs's resolv.conf; the real root's is the one
  // programs read from now on. The image's may be a symbolic link: replace it.
  std::string resolv = read_small_file("/etc/resolv.conf", 64 * 1024);
  std::string target = std::string(kNewRoot) + "/etc/resolv.conf";
  (void)::unlink(target.c_str());
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) {
    (void)!::write(fd, resolv.data(), resolv.size());
    ::close(fd);
  }

  // The initramfs is rootfs, which cannot be pivoted away from: move the new
  // root over "/" and chroot into it (what switch_root does).
  if (::chdir(kNewRoot) != 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0) {
    std::string failure = errno_text("move the new root over /");
    (void)::chdir("/");
    move_back();
    return Unexpected{failure};
  }
  if (::chroot(".") != 0 || ::chdir("/") != 0) return Unexpected{errno_text("chroot into the new root")};
  return {};
}

}  // namespace sandboxd::guest
