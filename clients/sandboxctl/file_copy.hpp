// `sandboxctl cp`: one file from this machine into a sandbox (file.write) or
// out of one (file.read), see WS_PROTOCOL.md "Files".
//
// The bytes stream in binary frames of 256 KiB with at most four of them
// queued on the way out, and a download is written to disk frame by frame,
// so a file of any size passes through a bounded amount of memory. Neither
// end is ever left with a part of the file: the guest renames an upload over
// its path only once all of it arrived, and a download goes to a temporary
// file beside its destination that is renamed into place only once the
// daemon confirmed its size (a failure removes it).
//
// Deliberately not done: directories (no -r), carrying a file's mode or
// owner across (--mode sets it explicitly), resuming a copy whose connection
// was lost — it fails with status 2 and is simply run again.
#pragma once

#include <optional>
#include <string>

#include "clients/sandboxctl/connection_target.hpp"

namespace sandboxd::ctl {

struct CopyOptions {
  // Exactly one of them is SANDBOX:/PATH; the other a local path, or "-" for
  // stdin (source) or stdout (destination).
  std::string source;
  std::string destination;
  std::optional<std::string> user;  // the guest account the sandbox side is read or written as
  std::optional<std::string> mode;  // octal permission bits of the file made, as the user wrote them
};

// 0 once the file is in place; 1 when the daemon or the local file system
// refused; 2 for bad usage or a connection that failed or was lost; 128+N
// after signal N (SIGINT, SIGTERM, SIGHUP), 141 when stdout was closed.
int copy_command(const Target& target, const CopyOptions& options);

}  // namespace sandboxd::ctl
