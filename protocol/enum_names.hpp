// The names of an enum's values, both ways, from one table per enum.
//
// Every enum that meets text (a config value, a command-line flag, a wire
// field, a log line) declares its names once, as a constexpr EnumNames; the
// name of a value, the value of a name and the list of choices for an error
// message all come from that table, so the two directions cannot drift apart.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd {

template <class E>
struct EnumName {
  E value;
  std::string_view name;
};

template <class E, std::size_t N>
class EnumNames {
 public:
  constexpr explicit EnumNames(std::array<EnumName<E>, N> table) : table_(table) {}

  // The value's name; "?" for a value the table does not list.
  constexpr std::string_view name(E value) const {
    for (const auto& entry : table_)
      if (entry.value == value) return entry.name;
    return "?";
  }

  std::optional<E> parse(std::string_view name) const {
    for (const auto& entry : table_)
      if (entry.name == name) return entry.value;
    return std::nullopt;
  }

  // "a, b or c", for messages that say what would have been accepted.
  std::string choices() const {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
      if (i > 0) out += i + 1 == N ? " or " : ", ";
      out += table_[i].name;
    }
    return out;
  }

  constexpr auto begin() const { return table_.begin(); }
  constexpr auto end() const { return table_.end(); }

 private:
  std::array<EnumName<E>, N> table_;
};

template <class E, class... Names>
constexpr auto make_enum_names(EnumName<E> first, Names... rest) {
  return EnumNames<E, 1 + sizeof...(rest)>(std::array<EnumName<E>, 1 + sizeof...(rest)>{first, rest...});
}

}  // namespace sandboxd
