#include "protocol/ws/binary_frame.hpp"

#include <cassert>

namespace sandboxd::protocol::ws {

bool is_output(BinaryKind kind) {
  return kind == BinaryKind::kStdout || kind == BinaryKind::kStderr || kind == BinaryKind::kFileData;
}

bool valid_exec_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxExecIdLength) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

Expected<BinaryFrameView> parse_binary_frame(ByteSpan message) {
  ByteReader in(message);
  auto kind_byte = in.u8();
  auto id_length = in.u8();
  if (!in.ok()) return parse_error("binary frame shorter than its 2-byte header");
  auto kind = static_cast<BinaryKind>(kind_byte);
  switch (kind) {
    case BinaryKind::kStdout:
    case BinaryKind::kStderr:
    case BinaryKind::kStdin:
    case BinaryKind::kStdinEof:
    case BinaryKind::kFileData:
    case BinaryKind::kFileUpload:
      break;
    default:
      return parse_error("unknown binary frame kind");
  }
  if (id_length == 0 || id_length > kMaxExecIdLength) return parse_error("exec id length must be 1..64");
  auto id = as_chars(in.take(id_length));
  if (!in.ok()) return parse_error("binary frame shorter than its exec id");
  if (!valid_exec_id(id)) return parse_error("exec id has characters other than [A-Za-z0-9._-]");
  BinaryFrameView frame{kind, id, 0, {}};
  if (is_output(kind)) {
    frame.seq = in.u64();
    if (!in.ok()) return parse_error("output frame shorter than its sequence number");
  }
  frame.data = in.rest();
  return frame;
}

namespace {
void append_header(Bytes& out, BinaryKind kind, std::string_view exec_id) {
  assert(valid_exec_id(exec_id));
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>(kind));
  w.u8(static_cast<std::uint8_t>(exec_id.size()));
  w.bytes(as_bytes(exec_id));
}
}  // namespace

Bytes output_frame_header(BinaryKind kind, std::string_view exec_id, std::uint64_t seq) {
  assert(is_output(kind));
  Bytes out;
  out.reserve(2 + exec_id.size() + 8);
  append_header(out, kind, exec_id);
  ByteWriter(out).u64(seq);
  return out;
}

Bytes stdin_frame(std::string_view exec_id, ByteSpan data, bool eof) {
  Bytes out;
  out.reserve(2 + exec_id.size() + data.size());
  append_header(out, eof ? BinaryKind::kStdinEof : BinaryKind::kStdin, exec_id);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes upload_frame(std::string_view transfer_id, ByteSpan data) {
  Bytes out;
  out.reserve(2 + transfer_id.size() + data.size());
  append_header(out, BinaryKind::kFileUpload, transfer_id);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

}  // namespace sandboxd::protocol::ws
