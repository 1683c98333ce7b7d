// File operations in a sandbox (WS_PROTOCOL.md, "Files"), done by the file
// tool built into the guest agent (protocol/README.md, "The file tool"): each
// is one exec of the tool as the requested user, so the guest's own
// permissions, mounts and file systems decide, exactly as for a program.
//
// This file has the operations that answer with metadata (stat, list,
// mkdir, remove, rename, chmod); file_transfer.hpp streams contents. Both
// read what the guest says as hostile: stdout is bounded and decoded by the
// pure protocol/file_entry codec, stderr only ever ends up, cut and cleaned,
// in an error message.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/agent/guest_agent.hpp"
#include "daemon/session/error.hpp"
#include "daemon/session/views.hpp"
#include "protocol/expected.hpp"
#include "protocol/file_entry.hpp"

namespace sandboxd::session {

// kStatfs and kResize are the service's own (disk usage, disk_mib), not
// client operations.
enum class FileOpKind { kStat, kList, kMkdir, kRemove, kRename, kChmod, kStatfs, kResize };

inline constexpr std::size_t kDefaultListLimit = 1000;
inline constexpr std::size_t kMaxListLimit = 10000;

struct FileOpParams {
  FileOpKind kind = FileOpKind::kStat;
  std::string path;
  std::string to;                     // kRename: the new path
  std::optional<std::uint32_t> mode;  // kMkdir (0755 when unset), kChmod (required)
  bool parents = false;               // kMkdir
  bool recursive = false;             // kRemove
  bool overwrite = false;             // kRename
  std::size_t limit = kDefaultListLimit;  // kList
  unsigned size_mib = 0;                  // kResize
  std::string user;                   // the guest account; empty: root
};

struct FileOpResult {
  std::vector<protocol::FileEntry> entries;  // kStat: one; kList: sorted by name
  bool truncated = false;                    // kList: the directory holds more than `limit`
  DiskUsage disk;                            // kStatfs
};

// The tool's argv for an operation.
std::vector<std::string> file_tool_argv(const FileOpParams& params);

// The domain error for the tool's exit status (an errno) and what it wrote
// on stderr. The message is the guest's line, cut to a few hundred bytes and
// reduced to printable ASCII, or strerror's text when it said nothing.
Error file_error(int errnum, std::string_view guest_said);

// Runs the tool in the guest behind `agent`; `done` runs once, on the loop,
// also when the machine goes away meanwhile.
void run_file_op(const std::shared_ptr<agent::GuestAgent>& agent, const FileOpParams& params,
                 std::function<void(Expected<FileOpResult, Error>)> done);

// What a file-tool exec that failed ended with, as an Error: a start failure
// (an agent without the tool), a signal, or an errno exit.
Error file_tool_failure(const protocol::Exit& exit, std::string_view guest_said);

// Keeps the last bytes a tool wrote on stderr, for file_error.
struct StderrTail {
  static constexpr std::size_t kKept = 1024;
  std::string text;
  void add(ByteSpan data);
};

}  // namespace sandboxd::session
