// The daemon a command talks to, and how sandboxctl reports failing to
// reach it or an error answer from it (exit statuses in main.cpp's help:
// 2 for usage, connection and token problems, 1 for an error answer).
#pragma once

#include <string>

#include "clients/sandboxctl/control_connection.hpp"
#include "clients/sandboxctl/ws_url.hpp"

namespace sandboxd::ctl {

inline constexpr int kExitServerError = 1;
inline constexpr int kExitUsage = 2;

struct Target {
  WsUrl url;
  std::string token;         // empty: connect without one
  std::string token_source;  // where it came from, for messages
  bool json = false;         // machine-readable output (--json)
};

// The lines (each ending in '\n') to print when connecting failed. A 401
// always starts with "sandboxctl: the daemon refused the token (HTTP 401)".
std::string connect_failure_text(const ConnectError& error, const Target& target);

// An error answer for stderr: with --json the error frame itself on one
// line, else "sandboxctl: <context: >message (code)".
std::string request_failure_text(const RequestError& error, const Target& target, const std::string& context = "");

}  // namespace sandboxd::ctl
