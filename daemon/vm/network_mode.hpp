// How a sandbox VM's network interface reaches the world, decided per VM.
//
//   none   no NIC at all: the guest has only `lo`.
//   slirp  QEMU's own user-mode network (`-netdev user`): 10.0.2.15/24, router
//          10.0.2.2, DNS 10.0.2.3. Kept only as a comparison peer; no policy
//          can be applied to it.
//   stack  the daemon's own user-space stack: QEMU's netdev is one end of a
//          socketpair the daemon created (inherited fd, nothing on disk), with
//          the stream framing (u32 big-endian length, then the Ethernet frame);
//          the daemon keeps the other end.
//
// The NIC is virtio-net over virtio-mmio. Its MTU reaches the guest as
// `host_mtu` (VIRTIO_NET_F_MTU); the DHCP server may announce it again.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "protocol/enum_names.hpp"

namespace sandboxd::vm {

enum class NetworkMode { kNone, kSlirp, kStack };
inline constexpr auto kNetworkModeNames =
    make_enum_names(EnumName<NetworkMode>{NetworkMode::kStack, "stack"}, EnumName<NetworkMode>{NetworkMode::kSlirp, "slirp"},
                    EnumName<NetworkMode>{NetworkMode::kNone, "none"});
inline std::string_view to_string(NetworkMode mode) { return kNetworkModeNames.name(mode); }

inline constexpr unsigned kMinMtu = 576;    // the least every IPv4 host must accept
inline constexpr unsigned kMaxMtu = 65520;  // virtio-net's host_mtu limit in QEMU
inline constexpr unsigned kDefaultMtu = 1500;
inline constexpr const char* kDefaultGuestMac = "52:54:00:12:34:56";  // QEMU's locally administered prefix

}  // namespace sandboxd::vm
