#include "protocol/file_entry.hpp"

namespace sandboxd::protocol {

namespace {

void put_string(ByteWriter& w, const std::string& s) {
  w.u32(static_cast<std::uint32_t>(s.size()));
  w.bytes(as_bytes(s));
}

bool valid_name(std::string_view name) {
  if (name == "/") return true;
  return !name.empty() && name.size() <= kMaxEntryName && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

}  // namespace

void encode_file_entry(const FileEntry& e, Bytes& out) {
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>(e.kind));
  w.u32(e.mode);
  w.u64(e.size);
  w.u64(static_cast<std::uint64_t>(e.mtime_ns));
  w.u32(e.uid);
  w.u32(e.gid);
  put_string(w, e.name);
  put_string(w, e.target);
}

Expected<std::vector<FileEntry>> decode_file_entries(ByteSpan data, std::size_t max_entries) {
  std::vector<FileEntry> entries;
  ByteReader r(data);
  while (!r.at_end()) {
    if (entries.size() == max_entries) return parse_error("more entries than asked for");
    FileEntry e;
    std::uint8_t kind = r.u8();
    if (r.ok() && (kind < 1 || kind > 4)) return parse_error("unknown entry kind");
    e.kind = static_cast<FileKind>(kind);
    e.mode = r.u32();
    if (e.mode > 07777) return parse_error("mode bits beyond 07777");
    e.size = r.u64();
    e.mtime_ns = static_cast<std::int64_t>(r.u64());
    e.uid = r.u32();
    e.gid = r.u32();
    std::uint32_t name_length = r.u32();
    if (r.ok() && name_length > kMaxEntryName) return parse_error("entry name longer than 255 bytes");
    e.name = std::string(as_chars(r.take(name_length)));
    std::uint32_t target_length = r.u32();
    if (r.ok() && target_length > kMaxLinkTarget) return parse_error("symlink target longer than 4096 bytes");
    e.target = std::string(as_chars(r.take(target_length)));
    if (!r.ok()) return parse_error("entry record is truncated");
    if (!valid_name(e.name)) return parse_error("entry name is empty or holds '/' or NUL");
    entries.push_back(std::move(e));
  }
  return entries;
}

const char* to_string(FileKind kind) {
  switch (kind) {
    case FileKind::kFile: return "file";
    case FileKind::kDirectory: return "directory";
    case FileKind::kSymlink: return "symlink";
    case FileKind::kOther: return "other";
  }
  return "other";
}

}  // namespace sandboxd::protocol
