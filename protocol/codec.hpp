// Encoding messages into frames and decoding frame bodies back into messages.
// Pure functions: no I/O, no state. See protocol/README.md for the layout.
#pragma once

#include "protocol/expected.hpp"
#include "protocol/messages.hpp"

namespace sandboxd::protocol {

// Appends one complete frame (length, version, type, body) for `m` to `out`.
void encode(const Message& m, Bytes& out);
Bytes encode(const Message& m);

// Decodes a frame body: `body` is everything after the 4-byte length, so it
// starts with the version and type bytes. Never reads outside `body`.
Expected<Message> decode_body(ByteSpan body);

}  // namespace sandboxd::protocol
