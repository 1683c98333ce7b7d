// The file tool built into the agent (protocol/README.md, "The file tool"):
// the operations behind the host's file API, run in a forked child of the
// agent that has already taken the exec's user, groups and working directory.
//
// Each call does one operation with fds 0, 1 and 2 as its stdin, stdout and
// stderr and returns the exit status the host reads: 0, or the errno value
// that made it fail (EINVAL for arguments it cannot use), with one line on
// stderr saying what failed. It is plain blocking I/O: the child has nothing
// else to do, and the agent's loop paces the pipes on the other side.
//
// The child may allocate (the agent is single-threaded, so no lock can be
// held across the fork). Nothing here checks permissions: the kernel does, as
// the exec's user.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::guest {

// Whether `operation` (an exec's argv[0]) names one of the tool's operations;
// the agent checks before it forks, so an unknown one is a start failure.
bool file_tool_knows(std::string_view operation);

// Runs the operation argv[0] with the arguments after it.
int run_file_tool(const std::vector<std::string>& argv);

}  // namespace sandboxd::guest
