// The host's TSC frequency, which a TCG guest's TSC runs at.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sandboxd::vm {

// Parses the first "cpu MHz" line of /proc/cpuinfo text into kHz.
std::optional<std::uint64_t> tsc_khz_from_cpuinfo(std::string_view cpuinfo);

// Reads /proc/cpuinfo; nullopt where it says nothing usable.
std::optional<std::uint64_t> host_tsc_khz();

}  // namespace sandboxd::vm
