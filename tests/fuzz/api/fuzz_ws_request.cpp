// Every parser a WebSocket text frame reaches: the envelope, then each
// operation's parameters, over whatever members the frame had.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/api/requests.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sandboxd::api;
  auto parsed = parse_envelope(std::string_view(reinterpret_cast<const char*>(data), size));
  if (parsed.error) return 0;
  const auto& m = parsed.envelope.members;
  (void)parse_create_sandbox(m);
  (void)parse_exec_start(m);
  (void)parse_attach(m);
  (void)parse_resize(m);
  (void)parse_signal(m);
  (void)parse_sandbox_id(m);
  (void)parse_exec_id(m);
  (void)parse_optional_sandbox_id(m);
  (void)parse_label_filter(m);
  (void)parse_hello_version(m);
  return 0;
}
