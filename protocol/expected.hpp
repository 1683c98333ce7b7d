// Expected<T, E>: a value or the reason there is none.
//
// Parsers of outside input return these instead of throwing: a hostile peer is
// an expected event, not a programming error. std::expected is C++23 and clang
// 14 (used for the fuzz builds) cannot use libstdc++'s, so this is the small
// subset the project needs.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace sandboxd {

// Why outside input was rejected. `reason` always points at a string literal,
// so rejecting a flood of bad packets allocates nothing.
struct ParseError {
  const char* reason;
  friend bool operator==(const ParseError& a, const ParseError& b) {
    return std::string_view(a.reason) == std::string_view(b.reason);
  }
};

template <class E>
struct Unexpected {
  E error;
};
template <class E>
Unexpected(E) -> Unexpected<E>;

template <class T, class E = ParseError>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  template <class U>
  Expected(Unexpected<U> e) : state_(std::in_place_index<1>, E(std::move(e.error))) {}

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(state_); }
  const T& value() const& { assert(has_value()); return std::get<0>(state_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const E& error() const { assert(!has_value()); return std::get<1>(state_); }

 private:
  std::variant<T, E> state_;
};

// Expected<void>: success or an error.
template <class E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  template <class U>
  Expected(Unexpected<U> e) : error_(E(std::move(e.error))), ok_(false) {}
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const { assert(!ok_); return error_; }

 private:
  E error_{};
  bool ok_ = true;
};

inline Unexpected<ParseError> parse_error(const char* reason) { return {ParseError{reason}}; }

}  // namespace sandboxd
