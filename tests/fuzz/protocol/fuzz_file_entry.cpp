// The file tool's entry records, as a hostile guest could send them: decoding
// never reads out of bounds, and what decodes encodes back to the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "protocol/file_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sandboxd;
  ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  auto entries = protocol::decode_file_entries(input, 64);
  if (!entries) return 0;
  Bytes again;
  for (const auto& e : *entries) protocol::encode_file_entry(e, again);
  if (again.size() != size || !std::equal(again.begin(), again.end(), input.begin())) std::abort();
  return 0;
}
