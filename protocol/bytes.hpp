// Bounds-checked big-endian reading and writing over byte buffers.
//
// Every codec in the project (the host<->guest protocol, the network wire
// formats) reads outside input through ByteReader, which never reads past the
// end: a short read sets a sticky failure flag and returns zeros, so a parser
// can read a whole header and check `ok()` once at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd {

using Bytes = std::vector<std::byte>;
using ByteSpan = std::span<const std::byte>;

inline ByteSpan as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) : data_(data) {}

  bool ok() const { return ok_; }
  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }
  bool at_end() const { return pos_ == data_.size(); }

  std::uint8_t u8() { return static_cast<std::uint8_t>(read_uint(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(read_uint(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(read_uint(4)); }
  std::uint64_t u64() { return read_uint(8); }

  // The next `n` bytes, or an empty span (and failure) if fewer remain.
  ByteSpan take(std::size_t n) {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return {};
    }
    ByteSpan out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  ByteSpan rest() { return take(remaining()); }
  void skip(std::size_t n) { (void)take(n); }
  void fail() { ok_ = false; }

 private:
  std::uint64_t read_uint(std::size_t n) {
    ByteSpan b = take(n);
    std::uint64_t v = 0;
    for (std::byte x : b) v = (v << 8) | static_cast<std::uint8_t>(x);
    return v;
  }

  ByteSpan data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(static_cast<std::byte>(v)); }
  void u16(std::uint16_t v) { write_uint(v, 2); }
  void u32(std::uint32_t v) { write_uint(v, 4); }
  void u64(std::uint64_t v) { write_uint(v, 8); }
  void bytes(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void zeros(std::size_t n) { out_.insert(out_.end(), n, std::byte{0}); }
  std::size_t size() const { return out_.size(); }

  // Overwrites a big-endian u16/u32 at an earlier offset (lengths, checksums).
  void patch_u16(std::size_t at, std::uint16_t v) {
    out_[at] = static_cast<std::byte>(v >> 8);
    out_[at + 1] = static_cast<std::byte>(v);
  }
  void patch_u32(std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_[at + i] = static_cast<std::byte>(v >> (24 - 8 * i));
  }

 private:
  void write_uint(std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out_.push_back(static_cast<std::byte>(v >> (8 * (n - 1 - i))));
  }
  Bytes& out_;
};

}  // namespace sandboxd
