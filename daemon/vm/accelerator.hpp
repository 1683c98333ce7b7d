// Which accelerator QEMU runs guests with, decided in one place.
//
// KVM is used only where it has been seen to boot a guest on this host: a
// /dev/kvm that opens is not enough (under nested virtualisation it can hang
// the guest in early boot). The verdict of a real boot is cached per host
// kernel, QEMU binary and CPU model, so the probe boot is paid once.
// HVF (macOS) belongs here too when the daemon is ported; on Linux it is never
// offered.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::vm {

enum class Accelerator { kKvm, kTcg, kHvf };

const char* to_string(Accelerator a);
std::optional<Accelerator> accelerator_from_string(std::string_view s);

// The user's request: a fixed accelerator, or "auto".
struct AcceleratorRequest {
  std::optional<Accelerator> fixed;  // nullopt: auto
};
std::optional<AcceleratorRequest> parse_accelerator_request(std::string_view s);

// True when /dev/kvm opens and speaks the stable KVM API.
bool kvm_device_usable();

// What identifies "this host" for the cached verdict.
std::string accelerator_cache_key(const std::filesystem::path& qemu_binary);

// Returns the accelerator to use. `probe_boot(kKvm)` must boot a real guest
// with a short deadline and say whether it answered. The verdict is read from
// and written to `cache_file` (missing or unreadable: probe again).
Accelerator choose_accelerator(const AcceleratorRequest& request,
                               const std::filesystem::path& cache_file,
                               const std::string& cache_key,
                               const std::function<bool()>& kvm_available,
                               const std::function<bool(Accelerator)>& probe_boot);

// Records that `a` failed to boot a guest after all (e.g. a later boot hit its
// deadline), so the next choice does not pick it again.
void record_accelerator_failure(const std::filesystem::path& cache_file, const std::string& cache_key,
                                Accelerator a);

}  // namespace sandboxd::vm
