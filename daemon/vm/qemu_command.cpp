#include "daemon/vm/qemu_command.hpp"

namespace sandboxd::vm {

std::string kernel_command_line(const QemuConfig& config) {
  // quiet: the 8250 UART is slow to emulate, every console line costs boot time.
  // panic=-1 with -no-reboot: a guest kernel panic ends QEMU at once instead of
  // leaving a dead VM until its deadline.
  std::string cmdline = "console=ttyS0 quiet panic=-1 reboot=t";
  if (config.accelerator == Accelerator::kTcg && config.tsc_khz) {
    cmdline += " tsc_early_khz=" + std::to_string(*config.tsc_khz);
  }
  // Layer names are plain words and fs one of two (image_layers.hpp): nothing
  // here needs quoting. The kernel keeps 2048 bytes of command line; 16
  // layers of 64-byte names fit.
  if (!config.layers.empty()) {
    cmdline += " sandbox.layers=";
    for (std::size_t i = 0; i < config.layers.size(); ++i)
      cmdline += (i ? "," : "") + config.layers[i].name + ":" + config.layers[i].fs;
  }
  // Debian's kernels have ext4 built in: no module to ask for.
  if (config.writable_disk_fd >= 0) cmdline += " sandbox.upper=disk";
  if (!config.extra_kernel_args.empty()) cmdline += " " + config.extra_kernel_args;
  return cmdline;
}

std::string qemu_option_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

std::vector<std::string> qemu_command_line(const QemuConfig& config) {
  std::vector<std::string> args = {config.qemu_binary.string()};
  auto add = [&](std::initializer_list<std::string> more) { args.insert(args.end(), more); };

  add({"-M", "microvm"});
  switch (config.accelerator) {
    case Accelerator::kKvm: add({"-accel", "kvm", "-cpu", "host"}); break;
    case Accelerator::kHvf: add({"-accel", "hvf", "-cpu", "host"}); break;
    case Accelerator::kTcg: add({"-accel", "tcg", "-cpu", "max"}); break;
  }
  add({"-smp", std::to_string(config.cpus), "-m", std::to_string(config.memory_mib)});
  add({"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"});
  // Threads named by role ("CPU 0/TCG", "CPU 0/KVM", ...): `top -H` and the
  // network benchmark tell the guest's vCPUs from QEMU's own work.
  add({"-name", "sandboxd,debug-threads=on"});
  add({"-kernel", config.kernel.string(), "-initrd", config.initramfs.string()});
  add({"-append", kernel_command_line(config)});
  // Each layer disk carries its position as the virtio-blk serial ("layer0" is
  // the bottom): the guest's vdX letters follow the order virtio-mmio
  // transports are probed, which is not a promise, so the agent goes by
  // /sys/block/vdX/serial.
  for (std::size_t i = 0; i < config.layers.size(); ++i) {
    std::string id = "layer" + std::to_string(i);
    add({"-drive", "file=" + qemu_option_value(config.layers[i].file.string()) +
                       ",if=none,format=raw,readonly=on,id=" + id,
         "-device", "virtio-blk-device,drive=" + id + ",serial=" + id});
  }
  if (config.writable_disk_fd >= 0) {
    // Handed over as an inherited fd, as the file has no name: QEMU opens it
    // again through /proc (an fd set would not do: QEMU also opens its
    // drives read-only, which a read-write fd in a set refuses).
    // discard=unmap: what the guest deletes is given back to the host.
    // werror/rerror=report: a host error reaches the guest as EIO instead of
    // pausing the VM (QEMU's default for ENOSPC).
    add({"-drive", "file=/proc/self/fd/" + std::to_string(config.writable_disk_fd) +
                       ",if=none,format=raw,discard=unmap,werror=report,rerror=report,id=upper",
         "-device", std::string("virtio-blk-device,drive=upper,serial=") + kWritableDiskSerial});
  }
  add({"-chardev", "socket,id=console,fd=" + std::to_string(config.console_fd), "-serial", "chardev:console"});
  add({"-device", "virtio-serial-device,max_ports=4"});
  add({"-chardev", "socket,id=ctl,fd=" + std::to_string(config.control_fd),
       "-device", "virtserialport,chardev=ctl,name=sandbox.ctl"});
  int n = 0;
  for (const std::string& port : config.extra_ports) {
    auto eq = port.find('=');
    std::string id = "port" + std::to_string(n++);
    add({"-chardev", "socket,id=" + id + ",fd=" + port.substr(eq + 1),
         "-device", "virtserialport,chardev=" + id + ",name=" + port.substr(0, eq)});
  }
  if (config.network != NetworkMode::kNone) {
    // QEMU 7.2 takes an inherited fd for the stream backend as addr.type=fd
    // (the client side, the default: the fd is used as a connected socket).
    std::string netdev = config.network == NetworkMode::kSlirp
                             ? "user,id=net0"
                             : "stream,id=net0,addr.type=fd,addr.str=" + std::to_string(config.network_fd);
    add({"-netdev", netdev, "-device",
         "virtio-net-device,netdev=net0,mac=" + config.guest_mac + ",host_mtu=" + std::to_string(config.mtu)});
  }
  if (config.seccomp_sandbox) {
    add({"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
  }
  args.insert(args.end(), config.extra_qemu_args.begin(), config.extra_qemu_args.end());
  return args;
}

}  // namespace sandboxd::vm
