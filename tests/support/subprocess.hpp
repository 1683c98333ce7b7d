// Runs a program the way a user would, with given stdin, and collects its
// stdout, stderr and exit status. A deadline kills it so a hung program fails
// the test instead of hanging the suite.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sandboxd::testing {

struct ProcessResult {
  int exit_code = -1;    // exit status, or 128+signal
  bool timed_out = false;
  std::string out;
  std::string err;
};

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& stdin_data = "",
                          std::chrono::seconds deadline = std::chrono::seconds(120));

// Starts a program in the background; stdout/stderr go to /dev/null.
pid_t start_process(const std::vector<std::string>& argv);

// Pids of live processes whose command name (comm) is `name`.
std::vector<pid_t> processes_named(const std::string& name);
// True while `pid` exists and is not a zombie.
bool is_running(pid_t pid);
// Pids of live children of `parent`.
std::vector<pid_t> children_of(pid_t parent);

std::string sha256_hex(const std::string& data);

}  // namespace sandboxd::testing
