// The host <-> guest control protocol: the messages sandboxd-host and the
// sandbox-agent exchange over the "sandbox.ctl" virtio-serial port.
//
// This header is the vocabulary only; protocol/codec.hpp turns messages into
// frames and back, protocol/frame_decoder.hpp splits a byte stream into frames.
// The wire layout of every message is documented in protocol/README.md.
//
// Flow control is by credit, per exec and direction: the agent sends at most
// kOutputWindow bytes of output that the host has not acknowledged with
// OutputAck, and the host sends at most kStdinWindow bytes of stdin the agent
// has not acknowledged with StdinAck. A slow reader on either end therefore
// stops the writer on the other instead of growing a buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol/bytes.hpp"

namespace sandboxd::protocol {

inline constexpr std::uint8_t kVersion = 1;
// Largest frame body (everything after the 4-byte length). Larger frames are
// rejected and skipped without being buffered.
inline constexpr std::uint32_t kMaxFrameBody = 1u << 20;
// Largest data chunk in one Output or Stdin message.
inline constexpr std::uint32_t kMaxChunk = 64u << 10;
inline constexpr std::uint32_t kOutputWindow = 1u << 20;
inline constexpr std::uint32_t kStdinWindow = 1u << 20;
// Limits on an ExecStart, so a hostile host cannot make the agent allocate
// without bound before the frame limit even applies.
inline constexpr std::uint32_t kMaxArgs = 4096;
inline constexpr std::uint32_t kMaxEnv = 4096;
inline constexpr std::uint32_t kMaxUserName = 256;  // bytes of ExecStart.user
// Largest terminal side, in character cells: far beyond any screen, and small
// enough that programs multiplying columns by rows never overflow.
inline constexpr std::uint16_t kMaxTerminalSide = 4096;

enum class MessageType : std::uint8_t {
  kHello = 0x01,
  kExecStart = 0x02,
  kExecStarted = 0x03,
  kOutput = 0x04,
  kOutputAck = 0x05,
  kStdin = 0x06,
  kStdinAck = 0x07,
  kSignal = 0x08,
  kExit = 0x09,
  kError = 0x0a,
  kShutdown = 0x0b,
  kPing = 0x0c,
  kPong = 0x0d,
  kResize = 0x0e,
};

enum class ErrorCode : std::uint16_t {
  kMalformedFrame = 1,     // a frame whose body does not parse
  kFrameTooLarge = 2,      // declared length above kMaxFrameBody
  kUnsupportedVersion = 3, // frame version byte is not kVersion
  kUnknownType = 4,        // message type this side does not know
  kUnknownExec = 5,        // exec id not running
  kDuplicateExec = 6,      // ExecStart with an id already in use
  kTooManyExecs = 7,       // agent's limit on concurrent execs reached
  kInvalidRequest = 8,     // well-formed but not acceptable (e.g. empty argv)
  kFlowControl = 9,        // peer sent beyond its credit window
  kInternal = 10,          // the sender failed on its own (e.g. out of fds)
};
const char* to_string(ErrorCode code);

enum class Stream : std::uint8_t { kStdout = 1, kStderr = 2 };

enum class ExitKind : std::uint8_t {
  kExited = 0,       // status is the exit code
  kSignaled = 1,     // status is the signal number
  kStartFailed = 2,  // status is 126 or 127 as a shell would; message says why
};

// guest -> host, once, when the agent is ready for work.
struct Hello {
  std::string agent_version;
  std::vector<std::string> capabilities;
  bool operator==(const Hello&) const = default;
};

// A pseudo-terminal's window size in character cells, each 1..kMaxTerminalSide.
// The terminal type is not here: the host passes it as TERM in the env.
struct Terminal {
  std::uint16_t cols = 80;
  std::uint16_t rows = 24;
  bool operator==(const Terminal&) const = default;
};

enum class Builtin : std::uint8_t { kNone = 0, kFileTool = 1 };

// host -> guest: start a process. `id` is chosen by the host and names the
// exec in every later message; ids of running execs must be unique.
struct ExecStart {
  std::uint32_t id = 0;
  std::vector<std::string> argv;  // argv[0] is looked up in PATH if it has no '/'
  std::vector<std::string> env;   // "NAME=value"; the whole environment
  std::string cwd;                // empty: "/"
  bool stdin_open = false;        // false: stdin is /dev/null (on a pty: Stdin is dropped)
  // Set: the process runs in a new session on a new pseudo-terminal of this
  // size, which is its stdin, stdout and stderr; all output comes as stdout.
  std::optional<Terminal> pty;
  // The account the process runs as, looked up in the guest's /etc/passwd
  // (and /etc/group for its groups). Empty: root.
  std::string user;
  // kFileTool: argv[0] names an operation of the agent's own file tool
  // (protocol/README.md, "The file tool") instead of a program.
  Builtin builtin = Builtin::kNone;
  bool operator==(const ExecStart&) const = default;
};

// guest -> host: the process is running.
struct ExecStarted {
  std::uint32_t id = 0;
  std::uint32_t pid = 0;
  bool operator==(const ExecStarted&) const = default;
};

// guest -> host: bytes the process wrote, in order per stream.
struct Output {
  std::uint32_t id = 0;
  Stream stream = Stream::kStdout;
  Bytes data;
  bool operator==(const Output&) const = default;
};

// host -> guest: the host has delivered `bytes` more output of exec `id`.
struct OutputAck {
  std::uint32_t id = 0;
  std::uint32_t bytes = 0;
  bool operator==(const OutputAck&) const = default;
};

// host -> guest: bytes for the process's stdin; eof closes it after `data`.
struct Stdin {
  std::uint32_t id = 0;
  bool eof = false;
  Bytes data;
  bool operator==(const Stdin&) const = default;
};

// guest -> host: `bytes` more stdin were written to the process.
struct StdinAck {
  std::uint32_t id = 0;
  std::uint32_t bytes = 0;
  bool operator==(const StdinAck&) const = default;
};

// host -> guest: deliver a signal to the exec's process group.
struct Signal {
  std::uint32_t id = 0;
  std::int32_t signo = 0;
  bool operator==(const Signal&) const = default;
};

// guest -> host: the exec is over and all its output has been sent.
struct Exit {
  std::uint32_t id = 0;
  ExitKind kind = ExitKind::kExited;
  std::int32_t status = 0;
  std::uint64_t user_usec = 0;
  std::uint64_t system_usec = 0;
  std::uint64_t max_rss_kib = 0;
  std::string message;  // why a start failed; empty otherwise
  bool operator==(const Exit&) const = default;
};

// either way: a request or frame was refused. id 0: not about one exec.
struct Error {
  std::uint32_t id = 0;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  bool operator==(const Error&) const = default;
};

// host -> guest: stop all processes, sync and power off.
struct Shutdown {
  bool operator==(const Shutdown&) const = default;
};

// host -> guest and back: liveness check; the token is echoed.
struct Ping {
  std::uint64_t token = 0;
  bool operator==(const Ping&) const = default;
};
struct Pong {
  std::uint64_t token = 0;
  bool operator==(const Pong&) const = default;
};

// host -> guest: a pty exec's terminal has a new size; the kernel tells the
// foreground process group with SIGWINCH.
struct Resize {
  std::uint32_t id = 0;
  Terminal size;
  bool operator==(const Resize&) const = default;
};

using Message = std::variant<Hello, ExecStart, ExecStarted, Output, OutputAck, Stdin, StdinAck,
                             Signal, Exit, Error, Shutdown, Ping, Pong, Resize>;

MessageType type_of(const Message& m);
const char* to_string(MessageType type);

}  // namespace sandboxd::protocol
