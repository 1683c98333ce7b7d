#include <catch2/catch.hpp>

#include "protocol/file_entry.hpp"

using namespace sandboxd;
using namespace sandboxd::protocol;

namespace {
FileEntry entry(FileKind kind, std::string name, std::string target = "") {
  FileEntry e;
  e.kind = kind;
  e.mode = 0644;
  e.size = 12345;
  e.mtime_ns = 1700000000123456789;
  e.uid = 1000;
  e.gid = 100;
  e.name = std::move(name);
  e.target = std::move(target);
  return e;
}
Bytes encoded(const std::vector<FileEntry>& entries) {
  Bytes out;
  for (const auto& e : entries) encode_file_entry(e, out);
  return out;
}
}  // namespace

TEST_CASE("file entries: records round trip, several in one buffer") {
  std::vector<FileEntry> entries{entry(FileKind::kFile, "a.txt"), entry(FileKind::kDirectory, "src"),
                                 entry(FileKind::kSymlink, "up", "../.."), entry(FileKind::kOther, "fifo"),
                                 entry(FileKind::kDirectory, "/")};
  auto back = decode_file_entries(encoded(entries), 10);
  REQUIRE(back);
  CHECK(*back == entries);
  CHECK(decode_file_entries({}, 10)->empty());
}

TEST_CASE("file entries: what a hostile guest could send is refused, never over-read") {
  Bytes good = encoded({entry(FileKind::kFile, "a")});
  // Every cut of a record is a truncation.
  for (std::size_t n = 1; n < good.size(); ++n)
    CHECK_FALSE(decode_file_entries(ByteSpan(good).first(n), 10));
  Bytes bad_kind = good;
  bad_kind[0] = std::byte{9};
  CHECK_FALSE(decode_file_entries(bad_kind, 10));
  auto bad_mode = entry(FileKind::kFile, "a");
  bad_mode.mode = 010000;
  CHECK_FALSE(decode_file_entries(encoded({bad_mode}), 10));
  CHECK_FALSE(decode_file_entries(encoded({entry(FileKind::kFile, "")}), 10));
  CHECK_FALSE(decode_file_entries(encoded({entry(FileKind::kFile, "a/b")}), 10));
  CHECK_FALSE(decode_file_entries(encoded({entry(FileKind::kFile, std::string("a\0b", 3))}), 10));
  CHECK_FALSE(decode_file_entries(encoded({entry(FileKind::kFile, std::string(256, 'x'))}), 10));
  CHECK(decode_file_entries(encoded({entry(FileKind::kFile, std::string(255, 'x'))}), 10));
  CHECK_FALSE(decode_file_entries(encoded({entry(FileKind::kSymlink, "l", std::string(4097, 'x'))}), 10));
  // A name length that claims 4 GiB fails before anything is allocated.
  Bytes huge = good;
  std::size_t name_length_at = 1 + 4 + 8 + 8 + 4 + 4;
  for (int i = 0; i < 4; ++i) huge[name_length_at + static_cast<std::size_t>(i)] = std::byte{0xff};
  CHECK_FALSE(decode_file_entries(huge, 10));
  // More records than asked for.
  CHECK_FALSE(decode_file_entries(encoded({entry(FileKind::kFile, "a"), entry(FileKind::kFile, "b")}), 1));
  CHECK(kMaxEntryRecord >= encoded({entry(FileKind::kSymlink, std::string(255, 'x'), std::string(4096, 'y'))}).size());
}
