// Binary WebSocket frames of the control plane (WS_PROTOCOL.md, "Binary
// frames"): a process's stdin, stdout and stderr bytes with a small header, so
// the hot path carries no JSON and no base64.
//
//   u8 kind | u8 n | exec id (n bytes, [A-Za-z0-9._-]) | u64 BE seq (output only) | data
//
// File transfers (file.read, file.write) use the same layout, with the
// transfer's id where an exec id would be; a file's data frames carry the
// offset of their first byte where output carries its seq.
//
// Shared by the daemon and the C++ client; pure, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/bytes.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::protocol::ws {

enum class BinaryKind : std::uint8_t {
  kStdout = 0x01,     // server -> client, with seq
  kStderr = 0x02,     // server -> client, with seq
  kStdin = 0x10,      // client -> server
  kStdinEof = 0x11,   // client -> server: data (possibly none), then end of stdin
  kFileData = 0x03,   // server -> client: a file being read; the u64 is its offset
  kFileUpload = 0x12, // client -> server: the next bytes of a file being written
};

inline constexpr std::size_t kMaxExecIdLength = 64;

// The kinds that go from the server to the client, with a u64 after the id.
bool is_output(BinaryKind kind);
// Exec ids travel in these headers and in JSON: 1..64 of [A-Za-z0-9._-].
bool valid_exec_id(std::string_view id);

struct BinaryFrameView {
  BinaryKind kind = BinaryKind::kStdout;
  std::string_view exec_id;  // points into the parsed buffer
  std::uint64_t seq = 0;     // output kinds only
  ByteSpan data;             // points into the parsed buffer
};

// Parses one whole binary message. Rejects unknown kinds, empty, long or
// non-ASCII ids and short headers; the reason names which.
Expected<BinaryFrameView> parse_binary_frame(ByteSpan message);

// Header for output (kStdout/kStderr) frames: append the data after it.
Bytes output_frame_header(BinaryKind kind, std::string_view exec_id, std::uint64_t seq);
// A whole stdin (kStdin/kStdinEof) frame.
Bytes stdin_frame(std::string_view exec_id, ByteSpan data, bool eof);
// A whole upload (kFileUpload) frame.
Bytes upload_frame(std::string_view transfer_id, ByteSpan data);

}  // namespace sandboxd::protocol::ws
