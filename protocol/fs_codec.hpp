// Encoding the mounts protocol's frames and decoding them back: pure
// functions over bytes, no I/O, no state (protocol/fs_messages.hpp has the
// vocabulary, protocol/README.md "The mounts port" the layout).
//
// Decoding checks everything a hostile peer could get wrong: lengths against
// what remains and against the protocol's limits, ops and types against the
// known ones, names (1..kMaxName bytes, no '/', no NUL, not "." or ".."),
// paths and targets (no NUL, at most kMaxPath), nanoseconds below 1e9, and
// counts of forgets and directory entries. A frame that fails any check is
// refused whole.
#pragma once

#include <cstddef>
#include <optional>

#include "protocol/expected.hpp"
#include "protocol/fs_messages.hpp"

namespace sandboxd::protocol::fs {

// Appends one complete frame (u32 length, version, type, body).
void encode(const Frame& frame, Bytes& out);
Bytes encode(const Frame& frame);

// Decodes a frame body: everything after the u32 length.
Expected<Frame> decode_body(ByteSpan body);

// The body of a successful Reply to `op`, from the members of `body` that op
// uses; and back. decode_reply_body refuses a body that is not exactly what
// `op` answers with (readdir: at most kMaxDirEntries entries; read: at most
// kMaxData bytes).
Bytes encode_reply_body(Op op, const ReplyBody& body);
Expected<ReplyBody> decode_reply_body(Op op, ByteSpan bytes);

// True when `name` may name a directory entry: 1..kMaxName bytes, neither
// "." nor "..", no '/' and no NUL.
bool valid_name(std::string_view name);

// Splits a byte stream into frame bodies. Holds what it was fed until next()
// takes it: the caller feeds one read and then takes every frame it holds.
// A declared length above kMaxFrameBody, or below the 2 bytes of version and
// type, is an error after which the stream cannot be trusted to be in step:
// failed() stays true, the buffer is let go, and the caller drops the peer.
class FrameSplitter {
 public:
  void feed(ByteSpan data);
  // The next whole body; nullopt when more bytes are needed. Once
  // failed() the splitter yields nothing more.
  std::optional<Bytes> next();
  bool failed() const { return failed_; }
  std::size_t buffered() const { return buffer_.size() - start_; }

 private:
  Bytes buffer_;
  std::size_t start_ = 0;
  bool failed_ = false;
};

}  // namespace sandboxd::protocol::fs
