#include "daemon/vfs/dispatch.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <new>

#include "protocol/fs_codec.hpp"

namespace sandboxd::vfs {

namespace {

using wire::Op;

int name_error(std::string_view name) {
  if (name.size() > wire::kMaxName) return ENAMETOOLONG;
  return wire::valid_name(name) ? 0 : EINVAL;
}

int target_error(std::string_view target) {
  if (target.size() > wire::kMaxPath) return ENAMETOOLONG;
  if (target.empty() || target.find('\0') != std::string_view::npos) return EINVAL;
  return 0;
}

// Whether open(2) flags would change the file or the directory.
bool writes(std::uint32_t flags) {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND | O_CREAT)) != 0;
}

// 0, or why the request must not reach the provider.
int refusal(const wire::Request& r, bool read_only) {
  if (read_only) {
    if (wire::modifies(r.op) || r.op == Op::kSetattr) return EROFS;
    if ((r.op == Op::kOpen || r.op == Op::kCreate) && writes(r.flags)) return EROFS;
    if (r.op == Op::kAccess && (r.flags & W_OK) != 0) return EROFS;
  }
  switch (r.op) {
    case Op::kLookup:
    case Op::kMknod:
    case Op::kMkdir:
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kLink:
    case Op::kCreate:
      return name_error(r.name);
    case Op::kSymlink:
      if (int e = name_error(r.name)) return e;
      return target_error(r.target);
    case Op::kRename:
      if (int e = name_error(r.name)) return e;
      return name_error(r.target);
    case Op::kRead:
      return r.size > wire::kMaxData ? EINVAL : 0;
    case Op::kWrite:
      return r.data.size() > wire::kMaxData ? EINVAL : 0;
    default:
      return 0;
  }
}

// A provider's errno is positive; anything else is a bug, answered as EIO
// rather than as a success with an empty body.
int errno_of(int error) { return error > 0 ? error : EIO; }

// Stores a successful result into the reply body; answers its errno.
template <class T, class Store>
int put(Result<T>&& result, Store store) {
  if (!result) return errno_of(result.error());
  store(std::move(result).value());
  return 0;
}
int put(Result<void>&& result) { return result ? 0 : errno_of(result.error()); }

int call(Provider& p, const wire::Request& r, wire::ReplyBody& body) {
  Caller caller{r.uid, r.gid, r.pid};
  auto entry = [&](wire::Entry e) { body.entry = std::move(e); };
  auto attr = [&](wire::Attr a) { body.attr = a; };
  auto open = [&](wire::OpenFile o) { body.open = o; };
  switch (r.op) {
    case Op::kLookup:
      return put(p.lookup(r.node, r.name), entry);
    case Op::kGetattr:
      return put(p.getattr(r.node, r.handle), attr);
    case Op::kSetattr:
      return put(p.setattr(r.node, r, caller), attr);
    case Op::kReadlink:
      return put(p.readlink(r.node), [&](std::string t) { body.target = std::move(t); });
    case Op::kMknod:
      return put(p.mknod(r.node, r.name, r.mode, r.rdev, caller), entry);
    case Op::kMkdir:
      return put(p.mkdir(r.node, r.name, r.mode, caller), entry);
    case Op::kUnlink:
      return put(p.unlink(r.node, r.name));
    case Op::kRmdir:
      return put(p.rmdir(r.node, r.name));
    case Op::kSymlink:
      return put(p.symlink(r.node, r.name, r.target, caller), entry);
    case Op::kRename:
      return put(p.rename(r.node, r.name, r.new_parent, r.target, r.flags));
    case Op::kLink:
      return put(p.link(r.node, r.new_parent, r.name), entry);
    case Op::kOpen:
      return put(p.open(r.node, r.flags), open);
    case Op::kRead:
      return put(p.read(r.node, r.handle, r.offset, r.size), [&](Bytes d) { body.data = std::move(d); });
    case Op::kWrite:
      return put(p.write(r.node, r.handle, r.offset, r.data), [&](std::uint32_t n) { body.written = n; });
    case Op::kFlush:
      return put(p.flush(r.node, r.handle));
    case Op::kRelease:
      return put(p.release(r.node, r.handle));
    case Op::kFsync:
      return put(p.fsync(r.node, r.handle, (r.flags & 1) != 0));
    case Op::kOpendir:
      return put(p.opendir(r.node), open);
    case Op::kReaddir:
      return put(p.readdir(r.node, r.handle, r.offset, r.size),
                 [&](std::vector<wire::DirEntry> e) { body.entries = std::move(e); });
    case Op::kReleasedir:
      return put(p.releasedir(r.node, r.handle));
    case Op::kStatfs:
      return put(p.statfs(r.node), [&](wire::StatFs s) { body.statfs = s; });
    case Op::kAccess:
      return put(p.access(r.node, r.flags, caller));
    case Op::kCreate:
      return put(p.create(r.node, r.name, r.mode, r.flags, caller), [&](Created c) {
        body.entry = std::move(c.entry);
        body.open = c.open;
      });
    case Op::kFallocate:
      return put(p.fallocate(r.node, r.handle, r.mode, r.offset, r.length));
  }
  return ENOSYS;  // an op value no decoder would have let through
}

}  // namespace

wire::Reply dispatch(Provider& provider, const wire::Request& request, bool read_only) {
  wire::Reply reply;
  reply.unique = request.unique;
  int error = refusal(request, read_only);
  if (error == 0) {
    try {
      wire::ReplyBody body;
      error = call(provider, request, body);
      if (error == 0) reply.body = wire::encode_reply_body(request.op, body);
    } catch (const std::bad_alloc&) {
      error = ENOMEM;
    } catch (const std::exception&) {
      error = EIO;
    }
  }
  if (error != 0) {
    reply.error = error;
    reply.body.clear();
  }
  return reply;
}

void forget(Provider& provider, const wire::Forget& forget) {
  for (const auto& item : forget.items) provider.forget(item.node, item.nlookup);
}

}  // namespace sandboxd::vfs
