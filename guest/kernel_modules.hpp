// Loading the kernel modules the guest needs (virtio transport, console,
// net, fuse), in the order the image builder wrote to /etc/sandbox/modules.
//
// The image also carries optional modules (9p over virtio, virtiofs: the
// guest ends of the peers the mounts benchmark compares against), listed in
// /etc/sandbox/modules.optional as a path and then the names of the optional
// modules it needs, per line, in load order. They are loaded only when the
// kernel command line names them (sandbox.modules=9p,virtiofs), after the
// boot list; a name the list lacks is reported, never fatal.
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

// The module names sandbox.modules= lists on a kernel command line
// (comma-separated, normalised; every occurrence counts, a name once).
std::vector<std::string> requested_modules_from_cmdline(std::string_view cmdline);

struct OptionalModules {
  std::vector<std::string> paths;    // to load, in this order
  std::vector<std::string> unknown;  // requested names the list does not have
};

// What to load from a modules.optional list (`list_text`) for `requested`:
// each named module and the optional modules it needs, in the list's order.
OptionalModules optional_modules_to_load(std::string_view list_text, const std::vector<std::string>& requested);

// Loads the optional modules of `list_file` that `cmdline` asks for; returns
// a line per failure and per unknown name.
std::vector<std::string> load_optional_modules(const std::string& list_file, const std::string& cmdline);

}  // namespace sandboxd::guest
