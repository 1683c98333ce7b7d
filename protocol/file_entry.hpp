// The entry record of the agent's file tool (protocol/README.md, "The file
// tool"): what `stat` and `list` write on their stdout, one record per
// directory entry. The guest encodes, the host decodes what a possibly
// hostile guest sent; pure, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::protocol {

enum class FileKind : std::uint8_t { kFile = 1, kDirectory = 2, kSymlink = 3, kOther = 4 };

// Longest name and symlink target a record may carry (NAME_MAX, PATH_MAX).
inline constexpr std::uint32_t kMaxEntryName = 255;
inline constexpr std::uint32_t kMaxLinkTarget = 4096;
// The most one record can take on the wire.
inline constexpr std::size_t kMaxEntryRecord = 1 + 4 + 8 + 8 + 4 + 4 + 4 + kMaxEntryName + 4 + kMaxLinkTarget;

struct FileEntry {
  FileKind kind = FileKind::kFile;
  std::uint32_t mode = 0;  // permission bits, st_mode & 07777
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string name;
  std::string target;  // a symlink's target; else empty
  bool operator==(const FileEntry&) const = default;
};

void encode_file_entry(const FileEntry& entry, Bytes& out);

// Every record in `data`, which must hold whole records and nothing else.
// Refused: an unknown kind, mode bits beyond 07777, a name that is empty,
// longer than kMaxEntryName or holds '/' or NUL (for `list`; "/" alone is
// the name `stat` gives the root), a target longer than kMaxLinkTarget, and
// more than `max_entries` records.
Expected<std::vector<FileEntry>> decode_file_entries(ByteSpan data, std::size_t max_entries);

const char* to_string(FileKind kind);

}  // namespace sandboxd::protocol
