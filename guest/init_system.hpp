// What the agent does as the guest's init before it serves the host: the
// file systems every program expects, the console as stdio, a host name.
// There is no other init: the guest has no services.
#pragma once

#include <string>
#include <vector>

namespace sandboxd::guest {

// Returns a line for each step that failed; the agent logs them and goes on,
// since most programs still run without, say, /dev/shm.
std::vector<std::string> init_system();

// Opens /dev/console as fds 0-2 where the kernel did not.
void attach_console();

// Stops every process, syncs and powers the VM off. Does not return.
[[noreturn]] void power_off();

}  // namespace sandboxd::guest
