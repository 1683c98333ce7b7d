// Loading the kernel modules the guest needs (virtio transport, console,
// net, fuse), in the order the image builder wrote to /etc/sandbox/modules.
//
// modprobe is what normally applies "module.param=value" from the kernel
// command line to modules loaded after boot; the agent loads them itself with
// finit_module, so it does that part too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::guest {

// "virtio-mmio.ko" / "virtio_mmio.ko" -> "virtio_mmio"
std::string module_name_of(std::string_view path);

// The parameters for `module` on a kernel command line, space-separated,
// e.g. "device=512@0xfeb00e00:12" for virtio_mmio.
std::string module_params_from_cmdline(std::string_view cmdline, std::string_view module);

// Loads every module listed in `list_file`; returns a line per failure.
std::vector<std::string> load_kernel_modules(const std::string& list_file, const std::string& cmdline);

}  // namespace sandboxd::guest
