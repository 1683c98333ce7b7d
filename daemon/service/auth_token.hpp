// Who may use the control plane: a client that presents the daemon's token,
// from a browser page only when the page's origin is allowed.
//
// The token is a secret shared through the file system: a file only its owner
// may read (mode 0600), created on first start with 256 random bits, so a
// fresh install is never open to every local user. Clients send it as
// `Authorization: Bearer <token>`; it is compared in constant time, so the
// time a refusal takes says nothing about how much of a guess was right.
//
// A web page the user visits can make the browser open a WebSocket to a local
// port. The browser names the page in the Origin header, which the page cannot
// change, so a browser connection is let in only from an allowed origin.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/expected.hpp"

namespace sandboxd::service {

// Shorter tokens are refused: a short secret can be guessed over the network.
inline constexpr std::size_t kMinTokenLength = 16;
inline constexpr std::size_t kMaxTokenLength = 1024;

// Printable ASCII without blanks, kMinTokenLength..kMaxTokenLength long: what
// fits in an Authorization header unchanged.
bool is_acceptable_token(std::string_view token);

// Returns the token kept in `file`, creating the file (and its missing parent
// directories, mode 0700) with a new random token when it does not exist.
// An existing file is refused when it is not a regular file, when it belongs
// to another user, when group or other may read or write it, or when its content (trailing blanks and line
// ends removed) is not an acceptable token. `created`, when given, says
// whether this call made the file.
Expected<std::string, std::string> load_or_create_token(const std::filesystem::path& file, bool* created = nullptr);

// <state dir>/token: /var/lib/sandboxd as root, else $XDG_STATE_HOME/sandboxd
// or ~/.local/state/sandboxd. Empty when the user has no home directory.
std::filesystem::path default_token_file();
// <state dir>/images, beside the token: where checkpoint images are kept
// unless `image_store` says otherwise. Empty as default_token_file is.
std::filesystem::path default_image_store();
// <state dir>/disks: where file-backed writable layers are made unless
// `disk_dir` says otherwise (never the runtime dir, usually a tmpfs).
std::filesystem::path default_disk_dir();

// Whether `presented` equals `expected`, taking the same time whatever the
// content. An empty `expected` matches nothing.
bool token_matches(std::string_view presented, std::string_view expected);

// The token of an "Authorization: Bearer <token>" header value (scheme in
// any case, one or more blanks after it); nullopt for any other header.
std::optional<std::string_view> bearer_token(std::string_view authorization_header);

// Whether `origin` is an origin: scheme://host[:port], with no path, user or
// query; the host may be a bracketed IPv6 address.
bool is_origin(std::string_view origin);

// Whether a connection whose Origin header is `origin` may be let in. An
// entry of `allowed` matches when scheme, host (both in any case) and port
// are equal, a missing port standing for the scheme's default (80 for http
// and ws, 443 for https and wss). "*" allows any origin, including "null".
bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed);

}  // namespace sandboxd::service
