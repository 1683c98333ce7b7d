// The binary frame header of the control plane; a frame that parses must
// encode back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>

#include "protocol/ws/binary_frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sandboxd;
  using namespace sandboxd::protocol::ws;
  ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  auto frame = parse_binary_frame(input);
  if (!frame) return 0;
  Bytes again = is_output(frame->kind)                ? output_frame_header(frame->kind, frame->exec_id, frame->seq)
                : frame->kind == BinaryKind::kFileUpload ? upload_frame(frame->exec_id, {})
                                                         : stdin_frame(frame->exec_id, {}, frame->kind == BinaryKind::kStdinEof);
  again.insert(again.end(), frame->data.begin(), frame->data.end());
  if (again.size() != size || !std::equal(again.begin(), again.end(), input.begin())) std::abort();
  return 0;
}
