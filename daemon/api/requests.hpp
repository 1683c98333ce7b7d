// Requests of the WebSocket control plane, parsed and checked: text frame ->
// envelope (id, op, members) -> the typed parameters of each operation (the
// sandbox service's own, session/requests.hpp, where it has them).
//
// Pure functions over the client's bytes: every member is checked for type
// and range here, with an error naming the member, so the code that acts on
// a request only ever sees valid values. Limits that depend on the daemon's
// configuration (max_cpus, ...) are checked where the request is carried out.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/api/api_error.hpp"
#include "daemon/session/file_ops.hpp"
#include "daemon/session/file_transfer.hpp"
#include "daemon/session/requests.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::api {

inline constexpr int kProtocolVersion = 1;
inline constexpr std::size_t kMaxRequestIdLength = 128;
inline constexpr std::size_t kMaxLabels = 32;
inline constexpr std::size_t kMaxEnvEntries = 1024;
// A memory mount's starting files: how many, how big each, and the most
// capacity one may have (its files live in the daemon's memory).
inline constexpr std::size_t kMaxMountFiles = 10000;
inline constexpr std::size_t kMaxMountFileBytes = 16u << 20;
inline constexpr std::uint64_t kMaxMemoryMountMib = 1024;
inline constexpr std::size_t kMaxArgs = 4096;

struct Envelope {
  boost::json::value id;  // null when the frame has no usable id
  std::string op;
  boost::json::object members;
};

// The envelope of a text frame, or the error to answer with; the error's id
// is the frame's id when it had a usable one, else null.
struct ParsedEnvelope {
  Envelope envelope;
  std::optional<ApiError> error;
};
ParsedEnvelope parse_envelope(std::string_view text);

Expected<session::CreateSandboxParams, ApiError> parse_create_sandbox(const boost::json::object& m);
// The "egress" (an old mode) or "network" (rules) member of sandbox.create
// and sandbox.set_network; nullopt when neither is given.
Expected<std::optional<session::NetworkChoice>, ApiError> parse_network_choice(const boost::json::object& m);
Expected<session::ExecStartParams, ApiError> parse_exec_start(const boost::json::object& m);

struct AttachParams {
  std::string exec_id;
  std::uint64_t after_seq = 0;
  bool read_only = false;
};
Expected<AttachParams, ApiError> parse_attach(const boost::json::object& m);

struct ResizeParams {
  std::string exec_id;
  std::uint16_t cols = 0;
  std::uint16_t rows = 0;
};
Expected<ResizeParams, ApiError> parse_resize(const boost::json::object& m);

struct SignalParams {
  std::string exec_id;
  int signo = 0;
};
Expected<SignalParams, ApiError> parse_signal(const boost::json::object& m);

// Files (WS_PROTOCOL.md, "Files"). Paths are absolute, at most 4096 bytes,
// without NUL; the guest resolves them.
inline constexpr std::size_t kMaxPathLength = 4096;
inline constexpr std::uint64_t kMaxFileSize = 1ull << 40;

struct FileOpRequest {
  std::string sandbox;
  session::FileOpParams params;
};
Expected<FileOpRequest, ApiError> parse_file_op(const boost::json::object& m, session::FileOpKind kind);

struct FileReadRequest {
  std::string sandbox;
  std::string transfer;
  std::string path;
  std::string user;
};
Expected<FileReadRequest, ApiError> parse_file_read(const boost::json::object& m);

struct FileWriteRequest {
  std::string sandbox;
  std::string transfer;
  session::FileWriteParams params;
};
Expected<FileWriteRequest, ApiError> parse_file_write(const boost::json::object& m);
// file.cancel: the transfer it names.
Expected<std::string, ApiError> parse_transfer_id(const boost::json::object& m);

// A required member naming a sandbox ("sandbox") or an exec ("exec").
Expected<std::string, ApiError> parse_sandbox_id(const boost::json::object& m);
// The "image" member a checkpoint or image request names (its rules are the
// image store's, checked by the service).
Expected<std::string, ApiError> parse_image_name(const boost::json::object& m);
Expected<std::string, ApiError> parse_exec_id(const boost::json::object& m);
// An optional member: nullopt when absent.
Expected<std::optional<std::string>, ApiError> parse_optional_sandbox_id(const boost::json::object& m);
Expected<session::Labels, ApiError> parse_label_filter(const boost::json::object& m);
Expected<int, ApiError> parse_hello_version(const boost::json::object& m);

// "INT", "SIGINT" or 1..64.
std::optional<int> signal_number(const boost::json::value& v);

}  // namespace sandboxd::api
