#include <catch2/catch.hpp>

#include "protocol/ws/binary_frame.hpp"

using namespace sandboxd;
using namespace sandboxd::protocol::ws;

TEST_CASE("binary frames: stdin frames round trip") {
  Bytes frame = stdin_frame("exec-1", as_bytes("data"), false);
  CHECK(frame.size() == 2 + 6 + 4);
  auto parsed = parse_binary_frame(frame);
  REQUIRE(parsed);
  CHECK(parsed->kind == BinaryKind::kStdin);
  CHECK(parsed->exec_id == "exec-1");
  CHECK(as_chars(parsed->data) == "data");
  auto eof = parse_binary_frame(stdin_frame("e", {}, true));
  REQUIRE(eof);
  CHECK(eof->kind == BinaryKind::kStdinEof);
  CHECK(eof->data.empty());
}

TEST_CASE("binary frames: output frames carry a big-endian seq") {
  Bytes frame = output_frame_header(BinaryKind::kStderr, "e", 0x0102030405060708ull);
  CHECK(frame == Bytes{std::byte{2}, std::byte{1}, std::byte{'e'}, std::byte{1}, std::byte{2}, std::byte{3},
                       std::byte{4}, std::byte{5}, std::byte{6}, std::byte{7}, std::byte{8}});
  auto parsed = parse_binary_frame(frame);
  REQUIRE(parsed);
  CHECK(parsed->seq == 0x0102030405060708ull);
}

TEST_CASE("binary frames: malformed headers are refused") {
  auto bytes = [](std::initializer_list<int> v) {
    Bytes b;
    for (int x : v) b.push_back(static_cast<std::byte>(x));
    return b;
  };
  CHECK_FALSE(parse_binary_frame({}));
  CHECK_FALSE(parse_binary_frame(bytes({0x10})));
  CHECK_FALSE(parse_binary_frame(bytes({0x03, 1, 'e'})));           // unknown kind
  CHECK_FALSE(parse_binary_frame(bytes({0x10, 0})));                // empty id
  CHECK_FALSE(parse_binary_frame(bytes({0x10, 65})));               // id too long
  CHECK_FALSE(parse_binary_frame(bytes({0x10, 3, 'a', 'b'})));      // short id
  CHECK_FALSE(parse_binary_frame(bytes({0x10, 2, 'a', '/'})));      // bad character
  CHECK_FALSE(parse_binary_frame(bytes({0x01, 1, 'a', 0, 0, 0})));  // short seq
  CHECK(valid_exec_id("A.z_0-9"));
  CHECK_FALSE(valid_exec_id(std::string(65, 'a')));
}

TEST_CASE("binary frames: file data goes to the client with its offset, uploads come from it") {
  Bytes data_frame = output_frame_header(BinaryKind::kFileData, "t1", 1ull << 33);
  auto data = parse_binary_frame(data_frame);
  REQUIRE(data);
  CHECK(data->kind == BinaryKind::kFileData);
  CHECK(is_output(data->kind));
  CHECK(data->exec_id == "t1");
  CHECK(data->seq == 1ull << 33);
  Bytes upload_bytes = upload_frame("t1", as_bytes("bytes"));
  auto upload = parse_binary_frame(upload_bytes);
  REQUIRE(upload);
  CHECK(upload->kind == BinaryKind::kFileUpload);
  CHECK_FALSE(is_output(upload->kind));
  CHECK(as_chars(upload->data) == "bytes");
}
