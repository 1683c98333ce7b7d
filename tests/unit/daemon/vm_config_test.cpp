#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "daemon/vm/accelerator.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/host_tsc.hpp"
#include "daemon/vm/network_mode.hpp"
#include "daemon/vm/qemu_command.hpp"
#include "daemon/vm/writable_disk.hpp"

using namespace sandboxd::vm;

namespace {
bool has_pair(const std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag && args[i + 1] == value) return true;
  return false;
}

// One scratch directory per test run, removed when the run ends.
struct ScratchDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("sandboxd-test-" + std::to_string(::getpid()));
  ScratchDir() { std::filesystem::create_directories(path); }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::filesystem::path temp_dir() {
  static ScratchDir dir;
  return dir.path;
}
}  // namespace

TEST_CASE("qemu command: microvm with no default devices and the fds handed over") {
  QemuConfig c;
  c.kernel = "/k";
  c.initramfs = "/i";
  c.control_fd = 7;
  c.console_fd = 8;
  c.cpus = 2;
  c.memory_mib = 512;
  auto args = qemu_command_line(c);
  CHECK(has_pair(args, "-M", "microvm"));
  CHECK(has_pair(args, "-name", "sandboxd,debug-threads=on"));
  CHECK(has_pair(args, "-accel", "tcg"));
  CHECK(has_pair(args, "-smp", "2"));
  CHECK(has_pair(args, "-m", "512"));
  CHECK(has_pair(args, "-kernel", "/k"));
  CHECK(has_pair(args, "-initrd", "/i"));
  CHECK(has_pair(args, "-chardev", "socket,id=ctl,fd=7"));
  CHECK(has_pair(args, "-chardev", "socket,id=console,fd=8"));
  CHECK(has_pair(args, "-device", "virtserialport,chardev=ctl,name=sandbox.ctl"));
  CHECK(std::find(args.begin(), args.end(), "-nodefaults") != args.end());
  CHECK(std::find(args.begin(), args.end(), "-no-reboot") != args.end());
  CHECK(std::find(args.begin(), args.end(), "-sandbox") != args.end());
}

TEST_CASE("qemu command: the TSC rate goes to TCG guests only") {
  QemuConfig c;
  c.tsc_khz = 2596130;
  c.accelerator = Accelerator::kTcg;
  CHECK(kernel_command_line(c).find("tsc_early_khz=2596130") != std::string::npos);
  c.accelerator = Accelerator::kKvm;
  CHECK(kernel_command_line(c).find("tsc_early_khz") == std::string::npos);
  auto args = qemu_command_line(c);
  CHECK(has_pair(args, "-accel", "kvm"));
  CHECK(has_pair(args, "-cpu", "host"));
}

TEST_CASE("qemu command: -sandbox is left out where QEMU lacks seccomp") {
  QemuConfig c;
  c.seccomp_sandbox = false;
  auto args = qemu_command_line(c);
  CHECK(std::find(args.begin(), args.end(), "-sandbox") == args.end());
}

namespace {
bool has_flag(const std::vector<std::string>& args, const std::string& flag) {
  return std::find(args.begin(), args.end(), flag) != args.end();
}
}  // namespace

TEST_CASE("qemu command: network none has no netdev and no NIC") {
  QemuConfig c;
  auto args = qemu_command_line(c);
  CHECK_FALSE(has_flag(args, "-netdev"));
  for (const auto& a : args) CHECK(a.find("virtio-net") == std::string::npos);
}

TEST_CASE("qemu command: network slirp is QEMU's user network behind a virtio-net NIC") {
  QemuConfig c;
  c.network = NetworkMode::kSlirp;
  auto args = qemu_command_line(c);
  CHECK(has_pair(args, "-netdev", "user,id=net0"));
  CHECK(has_pair(args, "-device", "virtio-net-device,netdev=net0,mac=52:54:00:12:34:56,host_mtu=1500"));
}

TEST_CASE("qemu command: network stack hands QEMU the inherited fd as a stream netdev") {
  QemuConfig c;
  c.network = NetworkMode::kStack;
  c.network_fd = 9;
  c.guest_mac = "52:54:00:aa:bb:cc";
  c.mtu = 65520;
  auto args = qemu_command_line(c);
  CHECK(has_pair(args, "-netdev", "stream,id=net0,addr.type=fd,addr.str=9"));
  CHECK(has_pair(args, "-device", "virtio-net-device,netdev=net0,mac=52:54:00:aa:bb:cc,host_mtu=65520"));
  // No socket path anywhere: the link exists only as the fd.
  for (const auto& a : args) CHECK(a.find("addr.path") == std::string::npos);
  CHECK(has_flag(args, "-sandbox"));
}


TEST_CASE("qemu command: a benchmark's extra arguments come last, its kernel words at the command line's end") {
  QemuConfig c;
  c.tsc_khz = 2596130;
  c.extra_qemu_args = {"-device", "virtio-9p-device,fsdev=fsb,mount_tag=bench"};
  c.extra_kernel_args = "sandbox.modules=9p,9pnet_virtio";
  auto args = qemu_command_line(c);
  REQUIRE(args.size() >= 2);
  CHECK(args[args.size() - 2] == "-device");
  CHECK(args.back() == "virtio-9p-device,fsdev=fsb,mount_tag=bench");
  std::string cmdline = kernel_command_line(c);
  CHECK(cmdline.ends_with(" tsc_early_khz=2596130 sandbox.modules=9p,9pnet_virtio"));
  CHECK(has_pair(args, "-append", cmdline));
  // None by default: the command line is as it was.
  QemuConfig plain;
  plain.tsc_khz = 2596130;
  CHECK(kernel_command_line(plain).ends_with("tsc_early_khz=2596130"));
  CHECK(qemu_command_line(plain).back().starts_with("on,"));  // -sandbox's value is last
}
TEST_CASE("qemu command: a writable disk goes in as an inherited fd, with its serial and kernel word") {
  QemuConfig c;
  c.writable_disk_fd = 9;
  auto args = qemu_command_line(c);
  CHECK(has_pair(args, "-drive", "file=/proc/self/fd/9,if=none,format=raw,discard=unmap,werror=report,rerror=report,id=upper"));
  CHECK(has_pair(args, "-device", "virtio-blk-device,drive=upper,serial=upper"));
  CHECK(kernel_command_line(c).find(" sandbox.upper=disk") != std::string::npos);
  QemuConfig plain;
  auto plain_args = qemu_command_line(plain);
  CHECK(std::none_of(plain_args.begin(), plain_args.end(), [](const std::string& a) { return a.find("id=upper") != std::string::npos; }));
  CHECK(kernel_command_line(plain).find("sandbox.upper") == std::string::npos);
}

TEST_CASE("writable disk: a nameless sparse ext4 file of the size asked for, refused beyond the free space") {
  auto dir = temp_dir() / "disks";
  auto disk = WritableDisk::make(dir, 64);
  REQUIRE(disk.has_value());
  struct stat st {};
  REQUIRE(::fstat((*disk)->fd(), &st) == 0);
  CHECK(st.st_size == 64ll << 20);
  CHECK(st.st_nlink == 0);                       // no name: gone with the last fd
  CHECK(st.st_blocks * 512 < (16ll << 20));      // sparse: the file system's metadata only
  CHECK((::fcntl((*disk)->fd(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(std::filesystem::is_empty(dir));
  // The ext4 superblock's magic, 0xEF53 at byte 1080.
  unsigned char magic[2] = {};
  REQUIRE(::pread((*disk)->fd(), magic, 2, 1080) == 2);
  CHECK(magic[0] == 0x53);
  CHECK(magic[1] == 0xEF);
  auto huge = WritableDisk::make(dir, 1u << 30);  // 1 PiB
  REQUIRE_FALSE(huge.has_value());
  CHECK(huge.error().find("MiB free, less than the") != std::string::npos);
  auto nowhere = WritableDisk::make("/proc/sandboxd-no-such-dir", 64);
  REQUIRE_FALSE(nowhere.has_value());
  CHECK(nowhere.error().find("/proc/sandboxd-no-such-dir") != std::string::npos);
}

TEST_CASE("network mode: names are parsed strictly and round-trip") {
  for (auto m : {NetworkMode::kNone, NetworkMode::kSlirp, NetworkMode::kStack})
    CHECK(kNetworkModeNames.parse(to_string(m)) == m);
  CHECK_FALSE(kNetworkModeNames.parse("user").has_value());
  CHECK_FALSE(kNetworkModeNames.parse("Stack").has_value());
  CHECK_FALSE(kNetworkModeNames.parse("").has_value());
}

TEST_CASE("host tsc: cpu MHz is read as kHz without rounding") {
  CHECK(tsc_khz_from_cpuinfo("processor\t: 0\ncpu MHz\t\t: 2596.130\ncache size\t: 512 KB\n") == 2596130u);
  CHECK(tsc_khz_from_cpuinfo("cpu MHz\t\t: 3000\n") == 3000000u);
  CHECK(tsc_khz_from_cpuinfo("cpu MHz\t\t: 1999.9\n") == 1999900u);
  CHECK_FALSE(tsc_khz_from_cpuinfo("model name: x\n").has_value());
  CHECK_FALSE(tsc_khz_from_cpuinfo("cpu MHz\t\t: fast\n").has_value());
  CHECK_FALSE(tsc_khz_from_cpuinfo("cpu MHz").has_value());
}

TEST_CASE("accelerator: a fixed request is obeyed without probing") {
  auto a = decide_accelerator_without_probe({Accelerator::kTcg}, temp_dir() / "none", "k", [] { return true; });
  CHECK(a == Accelerator::kTcg);
}

TEST_CASE("accelerator: without a usable /dev/kvm, TCG and no probe") {
  auto a = decide_accelerator_without_probe({}, temp_dir() / "none", "k", [] { return false; });
  CHECK(a == Accelerator::kTcg);
}

TEST_CASE("accelerator: a usable /dev/kvm with no verdict needs a probe, whose verdict is then cached per host") {
  auto file = temp_dir() / "accel-fallback";
  std::filesystem::remove(file);
  auto kvm = [] { return true; };
  CHECK_FALSE(decide_accelerator_without_probe({}, file, "host-1", kvm).has_value());
  record_accelerator_verdict(file, "host-1", Accelerator::kTcg);
  CHECK(decide_accelerator_without_probe({}, file, "host-1", kvm) == Accelerator::kTcg);
  // Another host (or QEMU, or kernel) probes again.
  CHECK_FALSE(decide_accelerator_without_probe({}, file, "host-2", kvm).has_value());
  record_accelerator_verdict(file, "host-2", Accelerator::kKvm);
  CHECK(decide_accelerator_without_probe({}, file, "host-2", kvm) == Accelerator::kKvm);
  // A later failure under KVM is remembered.
  record_accelerator_verdict(file, "host-2", Accelerator::kTcg);
  CHECK(decide_accelerator_without_probe({}, file, "host-2", kvm) == Accelerator::kTcg);
}

TEST_CASE("accelerator: requests are parsed strictly") {
  CHECK(parse_accelerator_request("auto").has_value());
  CHECK(parse_accelerator_request("kvm")->fixed == Accelerator::kKvm);
  CHECK_FALSE(parse_accelerator_request("KVM").has_value());
  CHECK_FALSE(parse_accelerator_request("").has_value());
}

TEST_CASE("guest image: names cannot escape the image roots") {
  auto root = temp_dir() / "images";
  std::filesystem::create_directories(root / "ok");
  for (const char* f : {"vmlinuz", "initramfs.cpio"}) std::ofstream(root / "ok" / f) << "x";
  std::ofstream(root / "ok" / "manifest.json") << "{}";
  CHECK(find_guest_image("ok", {root}).has_value());
  CHECK_FALSE(find_guest_image("../images/ok", {root}).has_value());
  CHECK_FALSE(find_guest_image("..", {root}).has_value());
  CHECK_FALSE(find_guest_image("", {root}).has_value());
  auto missing = find_guest_image("absent", {root});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().find("absent") != std::string::npos);
}

TEST_CASE("guest image: an incomplete image is not used") {
  auto root = temp_dir() / "images2";
  std::filesystem::create_directories(root / "half");
  std::ofstream(root / "half" / "vmlinuz") << "x";
  CHECK_FALSE(find_guest_image("half", {root}).has_value());
}
