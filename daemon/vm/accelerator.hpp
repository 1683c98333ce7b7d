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

#include "protocol/enum_names.hpp"

namespace sandboxd::vm {

enum class Accelerator { kKvm, kTcg, kHvf };
inline constexpr auto kAcceleratorNames =
    make_enum_names(EnumName<Accelerator>{Accelerator::kKvm, "kvm"}, EnumName<Accelerator>{Accelerator::kTcg, "tcg"},
                    EnumName<Accelerator>{Accelerator::kHvf, "hvf"});
inline std::string_view to_string(Accelerator a) { return kAcceleratorNames.name(a); }

// The user's request: a fixed accelerator, or "auto".
struct AcceleratorRequest {
  std::optional<Accelerator> fixed;  // nullopt: auto
  friend constexpr bool operator==(const AcceleratorRequest&, const AcceleratorRequest&) = default;
};
// The requests the daemon's configuration accepts (no HVF on Linux).
inline constexpr auto kAcceleratorRequestNames =
    make_enum_names(EnumName<AcceleratorRequest>{{}, "auto"}, EnumName<AcceleratorRequest>{{Accelerator::kKvm}, "kvm"},
                    EnumName<AcceleratorRequest>{{Accelerator::kTcg}, "tcg"});
std::optional<AcceleratorRequest> parse_accelerator_request(std::string_view s);

// True when /dev/kvm opens and speaks the stable KVM API.
bool kvm_device_usable();

// What identifies "this host" for the cached verdict.
std::string accelerator_cache_key(const std::filesystem::path& qemu_binary);

// The accelerator to use when it can be told without booting: the fixed
// request, TCG without a usable /dev/kvm, or the verdict cached in
// `cache_file` for this host. nullopt: a probe boot under KVM (a real guest
// with a short deadline) must decide, and its verdict is then recorded.
// Reads files: call it off the event loop.
std::optional<Accelerator> decide_accelerator_without_probe(const AcceleratorRequest& request,
                                                            const std::filesystem::path& cache_file,
                                                            const std::string& cache_key,
                                                            const std::function<bool()>& kvm_available);

// Records what a probe boot found, or that KVM failed to boot a guest after
// all (verdict kTcg), so the next start does not pick it again.
void record_accelerator_verdict(const std::filesystem::path& cache_file, const std::string& cache_key,
                                Accelerator verdict);

}  // namespace sandboxd::vm
