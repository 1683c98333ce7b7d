// The last N bytes of a stream (QEMU's stderr, the guest console): enough to
// say why a VM died without keeping its whole output.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sandboxd::vm {

class OutputTail {
 public:
  explicit OutputTail(std::size_t capacity) : capacity_(capacity) {}
  void append(std::string_view data) {
    text_.append(data);
    if (text_.size() > 2 * capacity_) text_.erase(0, text_.size() - capacity_);
  }
  std::string text() const {
    return text_.size() > capacity_ ? text_.substr(text_.size() - capacity_) : text_;
  }

 private:
  std::size_t capacity_;
  std::string text_;
};

}  // namespace sandboxd::vm
