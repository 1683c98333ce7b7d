// Files only the daemon's own user may touch, written so that a crash at any
// moment leaves either the old content or the new one, never a mix.
//
// New content goes to a temporary file beside the target (created exclusively,
// mode 0600, fsync'ed) and is then renamed or linked into place, and the
// directory is fsync'ed so the new name survives a power loss too. Readers
// therefore never see a half-written token or record.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "protocol/expected.hpp"

namespace sandboxd::service {

// Creates `dir` and any missing parents with mode 0700 (directories that
// already exist keep their mode). Fails when a component is not a directory.
Expected<void, std::string> make_private_dirs(const std::filesystem::path& dir);

struct FileContent {
  std::string bytes;
  struct stat info {};
};

struct FileError {
  int code = 0;  // errno of the failed call; 0 when the file itself is unacceptable
  std::string message;
};

// Reads a regular file of at most `max_bytes`. Anything else (a directory, a
// FIFO, a device, a larger file) is refused without blocking on it.
Expected<FileContent, FileError> read_small_file(const std::filesystem::path& file, std::size_t max_bytes);

// Replaces `file` with `content` (mode 0600) in one step.
Expected<void, std::string> replace_file(const std::filesystem::path& file, std::string_view content);

// Creates `file` with `content` (mode 0600) unless it exists. Returns false,
// leaving the existing file alone, when another writer got there first.
Expected<bool, std::string> create_file_exclusively(const std::filesystem::path& file, std::string_view content);

// Makes the directory entries in `dir` durable.
void sync_directory(const std::filesystem::path& dir);

}  // namespace sandboxd::service
