// Scratch files for the service tests: a directory of its own for each test,
// all under one directory per run that is removed when the run ends.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace sandboxd::service::test {

struct ScratchRun {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("sandboxd-service-test-" + std::to_string(::getpid()));
  ScratchRun() { std::filesystem::create_directories(path); }
  ~ScratchRun() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline std::filesystem::path fresh_dir(const std::string& name) {
  static ScratchRun run;
  static unsigned counter = 0;
  auto dir = run.path / (name + "-" + std::to_string(++counter));
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_file(const std::filesystem::path& file, std::string_view content, mode_t mode = 0600) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
  ::chmod(file.c_str(), mode);
}

inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline mode_t file_mode(const std::filesystem::path& file) {
  struct stat st {};
  ::stat(file.c_str(), &st);
  return st.st_mode & 07777;
}

}  // namespace sandboxd::service::test
