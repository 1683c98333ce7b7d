#include "protocol/codec.hpp"

#include <type_traits>

namespace sandboxd::protocol {
namespace {

// Strings and byte blobs are a u32 length then the bytes; lists are a u32
// count then the items. Every length is checked against what remains, so a
// huge count in a small frame fails before anything is allocated.

void put_blob(ByteWriter& w, ByteSpan b) {
  w.u32(static_cast<std::uint32_t>(b.size()));
  w.bytes(b);
}
void put_string(ByteWriter& w, const std::string& s) { put_blob(w, as_bytes(s)); }
void put_strings(ByteWriter& w, const std::vector<std::string>& list) {
  w.u32(static_cast<std::uint32_t>(list.size()));
  for (const auto& s : list) put_string(w, s);
}

ByteSpan get_blob(ByteReader& r, std::uint32_t max) {
  std::uint32_t n = r.u32();
  if (n > max) {
    r.fail();
    return {};
  }
  return r.take(n);
}
std::string get_string(ByteReader& r) {
  ByteSpan b = get_blob(r, kMaxFrameBody);
  return std::string(as_chars(b));
}
std::vector<std::string> get_strings(ByteReader& r, std::uint32_t max_count) {
  std::uint32_t n = r.u32();
  // Each item needs at least its 4-byte length.
  if (n > max_count || n > r.remaining() / 4) {
    r.fail();
    return {};
  }
  std::vector<std::string> out;
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) out.push_back(get_string(r));
  return out;
}

void put_terminal(ByteWriter& w, const Terminal& t) {
  w.u16(t.cols);
  w.u16(t.rows);
}
// False when a side is out of range: a zero-sized terminal is not one, and a
// huge one is a hostile peer. A short read passes here; decode_body reports it
// as a truncation.
bool get_terminal(ByteReader& r, Terminal& t) {
  t.cols = r.u16();
  t.rows = r.u16();
  auto fits = [](std::uint16_t n) { return n >= 1 && n <= kMaxTerminalSide; };
  return !r.ok() || (fits(t.cols) && fits(t.rows));
}

void encode_body(const Hello& m, ByteWriter& w) {
  put_string(w, m.agent_version);
  put_strings(w, m.capabilities);
}
void encode_body(const ExecStart& m, ByteWriter& w) {
  w.u32(m.id);
  put_strings(w, m.argv);
  put_strings(w, m.env);
  put_string(w, m.cwd);
  w.u8(m.stdin_open ? 1 : 0);
  w.u8(m.pty ? 1 : 0);
  if (m.pty) put_terminal(w, *m.pty);
  put_string(w, m.user);
  w.u8(static_cast<std::uint8_t>(m.builtin));
}
void encode_body(const ExecStarted& m, ByteWriter& w) {
  w.u32(m.id);
  w.u32(m.pid);
}
void encode_body(const Output& m, ByteWriter& w) {
  w.u32(m.id);
  w.u8(static_cast<std::uint8_t>(m.stream));
  put_blob(w, m.data);
}
void encode_body(const OutputAck& m, ByteWriter& w) {
  w.u32(m.id);
  w.u32(m.bytes);
}
void encode_body(const Stdin& m, ByteWriter& w) {
  w.u32(m.id);
  w.u8(m.eof ? 1 : 0);
  put_blob(w, m.data);
}
void encode_body(const StdinAck& m, ByteWriter& w) {
  w.u32(m.id);
  w.u32(m.bytes);
}
void encode_body(const Signal& m, ByteWriter& w) {
  w.u32(m.id);
  w.u32(static_cast<std::uint32_t>(m.signo));
}
void encode_body(const Exit& m, ByteWriter& w) {
  w.u32(m.id);
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.u32(static_cast<std::uint32_t>(m.status));
  w.u64(m.user_usec);
  w.u64(m.system_usec);
  w.u64(m.max_rss_kib);
  put_string(w, m.message);
}
void encode_body(const Error& m, ByteWriter& w) {
  w.u32(m.id);
  w.u16(static_cast<std::uint16_t>(m.code));
  put_string(w, m.message);
}
void encode_body(const Shutdown&, ByteWriter&) {}
void encode_body(const Ping& m, ByteWriter& w) { w.u64(m.token); }
void encode_body(const Pong& m, ByteWriter& w) { w.u64(m.token); }
void encode_body(const Resize& m, ByteWriter& w) {
  w.u32(m.id);
  put_terminal(w, m.size);
}

Expected<Message> decode(MessageType type, ByteReader& r) {
  switch (type) {
    case MessageType::kHello: {
      Hello m;
      m.agent_version = get_string(r);
      m.capabilities = get_strings(r, 256);
      return Message{std::move(m)};
    }
    case MessageType::kExecStart: {
      ExecStart m;
      m.id = r.u32();
      m.argv = get_strings(r, kMaxArgs);
      m.env = get_strings(r, kMaxEnv);
      m.cwd = get_string(r);
      std::uint8_t flag = r.u8();
      if (flag > 1) return parse_error("stdin flag is neither 0 nor 1");
      m.stdin_open = flag == 1;
      std::uint8_t has_pty = r.u8();
      if (has_pty > 1) return parse_error("pty flag is neither 0 nor 1");
      if (has_pty == 1 && !get_terminal(r, m.pty.emplace())) return parse_error("terminal size out of range");
      ByteSpan user = get_blob(r, kMaxUserName);
      m.user = std::string(as_chars(user));
      std::uint8_t builtin = r.u8();
      if (builtin > 1) return parse_error("unknown builtin");
      m.builtin = static_cast<Builtin>(builtin);
      return Message{std::move(m)};
    }
    case MessageType::kExecStarted: {
      ExecStarted m;
      m.id = r.u32();
      m.pid = r.u32();
      return Message{m};
    }
    case MessageType::kOutput: {
      Output m;
      m.id = r.u32();
      std::uint8_t s = r.u8();
      if (r.ok() && s != 1 && s != 2) return parse_error("output stream is neither stdout nor stderr");
      m.stream = static_cast<Stream>(s);
      ByteSpan data = get_blob(r, kMaxChunk);
      m.data.assign(data.begin(), data.end());
      return Message{std::move(m)};
    }
    case MessageType::kOutputAck: {
      OutputAck m;
      m.id = r.u32();
      m.bytes = r.u32();
      return Message{m};
    }
    case MessageType::kStdin: {
      Stdin m;
      m.id = r.u32();
      std::uint8_t eof = r.u8();
      if (eof > 1) return parse_error("stdin eof flag is neither 0 nor 1");
      m.eof = eof == 1;
      ByteSpan data = get_blob(r, kMaxChunk);
      m.data.assign(data.begin(), data.end());
      return Message{std::move(m)};
    }
    case MessageType::kStdinAck: {
      StdinAck m;
      m.id = r.u32();
      m.bytes = r.u32();
      return Message{m};
    }
    case MessageType::kSignal: {
      Signal m;
      m.id = r.u32();
      m.signo = static_cast<std::int32_t>(r.u32());
      if (r.ok() && (m.signo <= 0 || m.signo > 64)) return parse_error("signal number out of range");
      return Message{m};
    }
    case MessageType::kExit: {
      Exit m;
      m.id = r.u32();
      std::uint8_t kind = r.u8();
      if (kind > 2) return parse_error("unknown exit kind");
      m.kind = static_cast<ExitKind>(kind);
      m.status = static_cast<std::int32_t>(r.u32());
      m.user_usec = r.u64();
      m.system_usec = r.u64();
      m.max_rss_kib = r.u64();
      m.message = get_string(r);
      return Message{std::move(m)};
    }
    case MessageType::kError: {
      Error m;
      m.id = r.u32();
      m.code = static_cast<ErrorCode>(r.u16());
      m.message = get_string(r);
      return Message{std::move(m)};
    }
    case MessageType::kShutdown:
      return Message{Shutdown{}};
    case MessageType::kPing:
      return Message{Ping{r.u64()}};
    case MessageType::kPong:
      return Message{Pong{r.u64()}};
    case MessageType::kResize: {
      Resize m;
      m.id = r.u32();
      if (!get_terminal(r, m.size)) return parse_error("terminal size out of range");
      return Message{m};
    }
  }
  return parse_error("unknown message type");
}

}  // namespace

MessageType type_of(const Message& m) {
  static constexpr MessageType kTypes[] = {
      MessageType::kHello,  MessageType::kExecStart, MessageType::kExecStarted,
      MessageType::kOutput, MessageType::kOutputAck, MessageType::kStdin,
      MessageType::kStdinAck, MessageType::kSignal,  MessageType::kExit,
      MessageType::kError,  MessageType::kShutdown,  MessageType::kPing,
      MessageType::kPong,   MessageType::kResize};
  static_assert(std::size(kTypes) == std::variant_size_v<Message>);
  return kTypes[m.index()];
}

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::kHello: return "hello";
    case MessageType::kExecStart: return "exec-start";
    case MessageType::kExecStarted: return "exec-started";
    case MessageType::kOutput: return "output";
    case MessageType::kOutputAck: return "output-ack";
    case MessageType::kStdin: return "stdin";
    case MessageType::kStdinAck: return "stdin-ack";
    case MessageType::kSignal: return "signal";
    case MessageType::kExit: return "exit";
    case MessageType::kError: return "error";
    case MessageType::kShutdown: return "shutdown";
    case MessageType::kPing: return "ping";
    case MessageType::kPong: return "pong";
    case MessageType::kResize: return "resize";
  }
  return "unknown";
}

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformedFrame: return "malformed-frame";
    case ErrorCode::kFrameTooLarge: return "frame-too-large";
    case ErrorCode::kUnsupportedVersion: return "unsupported-version";
    case ErrorCode::kUnknownType: return "unknown-type";
    case ErrorCode::kUnknownExec: return "unknown-exec";
    case ErrorCode::kDuplicateExec: return "duplicate-exec";
    case ErrorCode::kTooManyExecs: return "too-many-execs";
    case ErrorCode::kInvalidRequest: return "invalid-request";
    case ErrorCode::kFlowControl: return "flow-control";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown-error";
}

void encode(const Message& m, Bytes& out) {
  std::size_t start = out.size();
  ByteWriter w(out);
  w.u32(0);  // length, patched below
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(type_of(m)));
  std::visit([&](const auto& msg) { encode_body(msg, w); }, m);
  w.patch_u32(start, static_cast<std::uint32_t>(out.size() - start - 4));
}

Bytes encode(const Message& m) {
  Bytes out;
  encode(m, out);
  return out;
}

Expected<Message> decode_body(ByteSpan body) {
  ByteReader r(body);
  std::uint8_t version = r.u8();
  std::uint8_t type = r.u8();
  if (!r.ok()) return parse_error("frame shorter than its version and type");
  if (version != kVersion) return parse_error("unsupported protocol version");
  if (type < static_cast<std::uint8_t>(MessageType::kHello) ||
      type > static_cast<std::uint8_t>(MessageType::kResize)) {
    return parse_error("unknown message type");
  }
  auto result = decode(static_cast<MessageType>(type), r);
  if (!result) return result;
  if (!r.ok()) return parse_error("frame body is truncated");
  if (!r.at_end()) return parse_error("frame has trailing bytes");
  return result;
}

}  // namespace sandboxd::protocol
