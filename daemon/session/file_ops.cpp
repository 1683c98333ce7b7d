#include "daemon/session/file_ops.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace sandboxd::session {

namespace {

std::string octal(std::uint32_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%o", mode & 07777);
  return text;
}

std::string cleaned(std::string_view text) {
  constexpr std::size_t kMaxMessage = 400;
  std::string out;
  for (char c : text) {
    if (out.size() == kMaxMessage) break;
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Collects one metadata operation's output.
struct OpRun {
  std::weak_ptr<agent::GuestAgent> agent;
  std::uint32_t exec_id = 0;
  FileOpParams params;
  Bytes out;
  bool overflow = false;
  StderrTail err;
  std::function<void(Expected<FileOpResult, Error>)> done;

  // The machine went away with the exec (its observer, holding this, with it).
  ~OpRun() { finish(Unexpected{Error{ErrorCode::kUnavailable, "the sandbox's machine went away"}}); }

  std::size_t max_out() const {
    if (params.kind == FileOpKind::kStatfs) return 24;
    std::size_t records = params.kind == FileOpKind::kList ? params.limit + 1 : 1;
    return records * protocol::kMaxEntryRecord;
  }

  void finish(Expected<FileOpResult, Error> result) {
    if (!done) return;
    auto callback = std::move(done);
    done = nullptr;
    callback(std::move(result));
  }

  void on_output(protocol::Stream stream, Bytes&& data) {
    auto live = agent.lock();
    if (!live) return;
    auto n = static_cast<std::uint32_t>(data.size());
    if (stream == protocol::Stream::kStderr) {
      err.add(data);
    } else if (!overflow && out.size() + data.size() <= max_out()) {
      out.insert(out.end(), data.begin(), data.end());
    } else if (!overflow) {  // more than the records asked for can take: not our tool talking
      overflow = true;
      live->signal(exec_id, SIGKILL);
    }
    live->ack_output(exec_id, n);
  }

  void on_exit(const protocol::Exit& exit) {
    if (overflow) return finish(Unexpected{Error{ErrorCode::kInternal, "the guest's file tool sent more than it was asked for"}});
    if (exit.kind != protocol::ExitKind::kExited || exit.status != 0)
      return finish(Unexpected{file_tool_failure(exit, err.text)});
    FileOpResult result;
    if (params.kind == FileOpKind::kStatfs) {
      ByteReader r(out);
      result.disk = {r.u64(), r.u64(), r.u64()};
      if (!r.ok() || !r.at_end())
        return finish(Unexpected{Error{ErrorCode::kInternal, "the guest's file tool sent a bad statfs answer"}});
    }
    if (params.kind == FileOpKind::kStat || params.kind == FileOpKind::kList) {
      std::size_t most = params.kind == FileOpKind::kList ? params.limit + 1 : 1;
      auto entries = protocol::decode_file_entries(out, most);
      if (!entries) return finish(Unexpected{Error{ErrorCode::kInternal, std::string("the guest's file tool sent a bad record: ") + entries.error().reason}});
      if (params.kind == FileOpKind::kStat && entries->size() != 1)
        return finish(Unexpected{Error{ErrorCode::kInternal, "the guest's file tool sent no record for stat"}});
      result.entries = std::move(*entries);
      if (result.entries.size() > params.limit && params.kind == FileOpKind::kList) {
        result.truncated = true;
        result.entries.resize(params.limit);
      }
      std::sort(result.entries.begin(), result.entries.end(),
                [](const auto& a, const auto& b) { return a.name < b.name; });
    }
    finish(std::move(result));
  }
};

}  // namespace

void StderrTail::add(ByteSpan data) {
  text.append(as_chars(data));
  if (text.size() > kKept) text.erase(0, text.size() - kKept);
}

std::vector<std::string> file_tool_argv(const FileOpParams& p) {
  auto flag = [](bool b) { return std::string(b ? "1" : "0"); };
  switch (p.kind) {
    case FileOpKind::kStat: return {"stat", p.path};
    case FileOpKind::kList: return {"list", p.path, std::to_string(p.limit)};
    case FileOpKind::kMkdir: return {"mkdir", p.path, octal(p.mode.value_or(0755)), flag(p.parents)};
    case FileOpKind::kRemove: return {"remove", p.path, flag(p.recursive)};
    case FileOpKind::kRename: return {"rename", p.path, p.to, flag(p.overwrite)};
    case FileOpKind::kChmod: return {"chmod", p.path, octal(p.mode.value_or(0))};
    case FileOpKind::kStatfs: return {"statfs", p.path};
    case FileOpKind::kResize: return {"resize", p.path, std::to_string(p.size_mib)};
  }
  return {};
}

Error file_error(int errnum, std::string_view guest_said) {
  std::string message = cleaned(guest_said);
  if (message.empty()) message = std::strerror(errnum);
  ErrorCode code = ErrorCode::kIoError;
  switch (errnum) {
    case ENOENT: code = ErrorCode::kNotFound; break;
    case EEXIST: code = ErrorCode::kExists; break;
    case ENOTDIR: code = ErrorCode::kNotADirectory; break;
    case EISDIR: code = ErrorCode::kIsADirectory; break;
    case ENOTEMPTY: code = ErrorCode::kNotEmpty; break;
    case ENOSPC:
    case EDQUOT: code = ErrorCode::kNoSpace; break;
    case EACCES:
    case EPERM: code = ErrorCode::kPermissionDenied; break;
    case EROFS: code = ErrorCode::kReadOnly; break;
    case ENAMETOOLONG: code = ErrorCode::kNameTooLong; break;
    case ELOOP: code = ErrorCode::kSymlinkLoop; break;
    case EINVAL: return Error::bad_request("path", message);
    default: break;
  }
  if (code == ErrorCode::kIoError) message += " (errno " + std::to_string(errnum) + ")";
  return Error{code, message};
}

Error file_tool_failure(const protocol::Exit& exit, std::string_view guest_said) {
  // 126: the tool could not become the user (an account the guest does not
  // know); 127: the agent has no such operation.
  if (exit.kind == protocol::ExitKind::kStartFailed && exit.status == 126)
    return Error::bad_request("user", cleaned(exit.message));
  if (exit.kind == protocol::ExitKind::kStartFailed)
    return Error{ErrorCode::kUnavailable, "the guest cannot do file operations: " + cleaned(exit.message)};
  if (exit.kind == protocol::ExitKind::kSignaled)
    return Error{ErrorCode::kIoError, "the guest's file tool was killed by signal " + std::to_string(exit.status)};
  return file_error(exit.status, guest_said);
}

void run_file_op(const std::shared_ptr<agent::GuestAgent>& agent, const FileOpParams& params,
                 std::function<void(Expected<FileOpResult, Error>)> done) {
  auto run = std::make_shared<OpRun>();
  run->agent = agent;
  run->params = params;
  run->done = std::move(done);
  agent::ExecRequest request;
  request.argv = file_tool_argv(params);
  request.cwd = "/";
  request.user = params.user;
  request.builtin = protocol::Builtin::kFileTool;
  // The agent's exec holds the run until the exec has ended.
  agent::ExecObserver observer;
  observer.on_started = [](std::uint32_t) {};
  observer.on_output = [run](protocol::Stream stream, Bytes&& data) { run->on_output(stream, std::move(data)); };
  observer.on_stdin_credit = [] {};
  observer.on_exit = [run](const protocol::Exit& exit) { run->on_exit(exit); };
  observer.on_failed = [run](const std::string& reason) {
    run->finish(Unexpected{Error{ErrorCode::kUnavailable, "the file operation did not run: " + reason}});
  };
  run->exec_id = agent->start_exec(request, std::move(observer));
}

}  // namespace sandboxd::session
