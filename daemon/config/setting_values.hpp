// The kinds of value a setting takes, each the one place where text becomes
// that value: integers, sizes, durations, choices among an enum's names,
// addresses, paths, the token, origins and image names.
//
// A kind parses (with the reason a user reads when the text is not one of
// its values, "expected an integer 0..64"), shows a value the way the config
// file spells it ("16M", "10m", "deny-all"), and says in a few words what it
// accepts, for the reference and --help. The config file and the command-line
// flags both go through these parsers, so a value has one set of rules and
// one set of messages wherever it is written.
//
// Messages never repeat the text they refuse where it may be a secret (the
// token); where they quote it, it is cut short and made printable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/enum_names.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::config {

inline constexpr std::uint64_t kKiB = 1024;
inline constexpr std::uint64_t kMiB = 1024 * kKiB;
inline constexpr std::uint64_t kGiB = 1024 * kMiB;

template <class T>
struct ValueKind {
  std::function<Expected<T, std::string>(std::string_view)> parse;
  std::function<std::string(const T&)> show;
  std::string accepts;  // "0..64", "auto, kvm or tcg"
};

// Plain decimal digits, lo..hi.
ValueKind<std::uint64_t> integer(std::uint64_t lo, std::uint64_t hi);
// Bytes, or a number with a K, M or G suffix (1024, 1024², 1024³), lo..hi.
ValueKind<std::uint64_t> size(std::uint64_t lo, std::uint64_t hi);
// Seconds, or a number with an s, m or h suffix, up to a year (8760h).
ValueKind<std::uint64_t> duration();

template <class E, std::size_t N>
ValueKind<E> choice(EnumNames<E, N> names) {
  return {[names](std::string_view text) -> Expected<E, std::string> {
            if (auto value = names.parse(text)) return *value;
            return Unexpected{"expected " + names.choices()};
          },
          [names](const E& value) { return std::string(names.name(value)); }, names.choices()};
}

// Text from the input, fit for an error message: at most 64 characters, and
// anything unprintable shown as \xNN, so a message never carries a control
// sequence to a terminal or a log.
std::string shown_in_message(std::string_view text);

// host:port or [IPv6 address]:port; empty disables TCP.
ValueKind<std::string> listen_address();
// An absolute path that fits a unix socket address, "none", or empty.
ValueKind<std::string> socket_path();
// An absolute path, or empty for the default. Relative paths are refused:
// the daemon's working directory is no place to resolve them against.
ValueKind<std::filesystem::path> absolute_path();
// Comma-separated absolute paths (blanks and empty items skipped), each
// normalised lexically: "/srv//agents/" is "/srv/agents". No "..".
ValueKind<std::vector<std::filesystem::path>> absolute_paths();
// A bearer token (auth_token.hpp), or empty. Shown as "(secret)" when set.
ValueKind<std::string> token();
// Comma-separated browser origins, or * for any; blanks and empty items are
// skipped, so an empty text allows none.
ValueKind<std::vector<std::string>> origins();
// Comma-separated NAME=IP host aliases: a host name and an IPv4 address.
ValueKind<std::vector<std::string>> host_aliases();
// A guest image name, held to the image finder's rule (it names a directory).
ValueKind<std::string> image_name();

}  // namespace sandboxd::config
