// The guest's network, set up once at boot before the agent says hello, so
// the first command already has it.
//
// `lo` always comes up (the kernel gives it 127.0.0.1 and ::1). When the host
// gave the VM a NIC, it is `eth0` (virtio_net, loaded from the module list;
// no udev renames it): it comes up and is configured by DHCP with busybox
// `udhcpc`, whose hook script (/etc/sandbox/udhcpc.script, written by the image
// builder) applies the address, the default route, the MTU and the DNS servers
// to /etc/resolv.conf. Whoever answers DHCP — QEMU's slirp or the daemon's own
// stack — is the one place network settings come from; nothing is hard-coded
// here.
//
// The wait is bounded (two discover attempts a second apart, ~2 s, then a hard
// deadline): with no answer the agent logs one line and serves without an
// address. udhcpc's own chatter goes to /run/udhcpc.log, not to the console,
// since every console line costs boot time on an emulated UART.
#pragma once

#include <string>
#include <vector>

namespace sandboxd::guest {

// Returns a line for each step that failed; the agent logs them and goes on.
std::vector<std::string> set_up_network();

}  // namespace sandboxd::guest
