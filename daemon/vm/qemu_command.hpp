// The QEMU command line for one sandbox VM, as a pure function of its config.
//
// Shape: `-M microvm` with virtio-mmio devices (fastest boot measured here),
// no default devices, no firmware, direct kernel + initramfs boot. The host
// ends of the control port and the serial console are sockets the daemon
// created and hands to QEMU as inherited file descriptors, so no socket path
// ever exists on disk for another process to reach or for a crash to leave.
// The same holds for the network link in `stack` mode (see network_mode.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "daemon/vm/accelerator.hpp"
#include "daemon/vm/image_layers.hpp"
#include "daemon/vm/network_mode.hpp"
#include "daemon/vm/writable_disk.hpp"

namespace sandboxd::vm {

struct QemuConfig {
  std::filesystem::path qemu_binary = "qemu-system-x86_64";
  std::filesystem::path kernel;
  std::filesystem::path initramfs;
  // A layered image's layers, bottom first: read-only virtio-blk disks with
  // serials layer0, layer1, ..., named with their file systems on the kernel
  // command line (sandbox.layers=base:squashfs,...) for the agent to stack.
  std::vector<ImageLayer> layers;
  Accelerator accelerator = Accelerator::kTcg;
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  int control_fd = -1;  // host end of the virtio-serial "sandbox.ctl" port (inherited)
  int console_fd = -1;  // host end of the serial console (inherited)
  // The host's TSC rate. Under TCG the guest kernel's PIT calibration of the
  // TSC sometimes fails and the boot stops; handing it the rate avoids that.
  std::optional<std::uint64_t> tsc_khz;
  bool seccomp_sandbox = true;  // -sandbox on, where this QEMU was built with it
  std::vector<std::string> extra_ports;  // more virtserialports: "name=fd", e.g. a qemu-ga peer
  NetworkMode network = NetworkMode::kNone;
  int network_fd = -1;  // stack mode: QEMU's end of the frame stream (inherited)
  std::string guest_mac = kDefaultGuestMac;
  unsigned mtu = kDefaultMtu;
  // For benchmarks that compare against a peer device (vm.hpp's VmSpec):
  // appended after every other argument, and to the kernel command line.
  // Nothing from a client ever reaches them.
  // An inherited read-write fd: the writable layer's disk (writable_disk.hpp),
  // attached with the serial the guest looks for; -1: a tmpfs in the guest.
  int writable_disk_fd = -1;
  std::vector<std::string> extra_qemu_args;
  std::string extra_kernel_args;
};

std::vector<std::string> qemu_command_line(const QemuConfig& config);

// `value` as one value of a QEMU option list: commas doubled, so a path with
// a comma cannot add options of its own.
std::string qemu_option_value(const std::string& value);

// The kernel command line the guest boots with.
std::string kernel_command_line(const QemuConfig& config);

}  // namespace sandboxd::vm
