// Writing a whole buffer to a descriptor that a terminal or a parent may
// have left non-blocking: the host CLI and sandboxctl both copy a guest's
// output to their own stdout and stderr this way.
#pragma once

#include "protocol/bytes.hpp"

namespace sandboxd {

// Writes all of `data` to `fd`, retrying on EINTR and waiting in poll() on
// EAGAIN. False when the reader has gone away (EPIPE) or the write fails.
bool write_fully(int fd, ByteSpan data);

}  // namespace sandboxd
