#include "protocol/fs_messages.hpp"

namespace sandboxd::protocol::fs {

const char* to_string(Op op) {
  switch (op) {
    case Op::kLookup:
      return "lookup";
    case Op::kGetattr:
      return "getattr";
    case Op::kSetattr:
      return "setattr";
    case Op::kReadlink:
      return "readlink";
    case Op::kMknod:
      return "mknod";
    case Op::kMkdir:
      return "mkdir";
    case Op::kUnlink:
      return "unlink";
    case Op::kRmdir:
      return "rmdir";
    case Op::kSymlink:
      return "symlink";
    case Op::kRename:
      return "rename";
    case Op::kLink:
      return "link";
    case Op::kOpen:
      return "open";
    case Op::kRead:
      return "read";
    case Op::kWrite:
      return "write";
    case Op::kFlush:
      return "flush";
    case Op::kRelease:
      return "release";
    case Op::kFsync:
      return "fsync";
    case Op::kOpendir:
      return "opendir";
    case Op::kReaddir:
      return "readdir";
    case Op::kReleasedir:
      return "releasedir";
    case Op::kStatfs:
      return "statfs";
    case Op::kAccess:
      return "access";
    case Op::kCreate:
      return "create";
    case Op::kFallocate:
      return "fallocate";
  }
  return "unknown";
}

bool modifies(Op op) {
  switch (op) {
    case Op::kSetattr:
    case Op::kMknod:
    case Op::kMkdir:
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kSymlink:
    case Op::kRename:
    case Op::kLink:
    case Op::kCreate:
    case Op::kWrite:
    case Op::kFallocate:
      return true;
    // An open for writing modifies too, but that is in its flags, which the
    // caller reads; fsync and flush only push out what a write already did.
    case Op::kLookup:
    case Op::kGetattr:
    case Op::kReadlink:
    case Op::kOpen:
    case Op::kRead:
    case Op::kFlush:
    case Op::kRelease:
    case Op::kFsync:
    case Op::kOpendir:
    case Op::kReaddir:
    case Op::kReleasedir:
    case Op::kStatfs:
    case Op::kAccess:
      return false;
  }
  return false;
}

}  // namespace sandboxd::protocol::fs
