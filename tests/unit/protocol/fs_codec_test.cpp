#include <catch2/catch.hpp>

#include <set>

#include "protocol/fs_codec.hpp"

using namespace sandboxd;
using namespace sandboxd::protocol::fs;

namespace {

Bytes bytes_of(std::string_view s) {
  ByteSpan b = as_bytes(s);
  return Bytes(b.begin(), b.end());
}

Expected<Frame> round(const Frame& frame) {
  Bytes out = encode(frame);
  return decode_body(ByteSpan(out).subspan(4));
}

std::string_view reason(const Expected<Frame>& r) {
  REQUIRE_FALSE(r.has_value());
  return r.error().reason;
}
std::string_view reason(const Expected<ReplyBody>& r) {
  REQUIRE_FALSE(r.has_value());
  return r.error().reason;
}

Request request(Op op) {
  Request m;
  m.unique = 0x0102030405060708ULL;
  m.mount_id = 3;
  m.op = op;
  m.node = 42;
  m.uid = 1000;
  m.gid = 100;
  m.pid = 4321;
  return m;
}

Attr sample_attr() {
  Attr a;
  a.ino = 42;
  a.size = 1 << 20;
  a.blocks = 2048;
  a.atime = {1700000000, 1};
  a.mtime = {-1, 999'999'999};
  a.ctime = {0, 0};
  a.mode = 0100644;
  a.nlink = 1;
  a.uid = 1000;
  a.gid = 100;
  a.rdev = 0;
  a.blksize = 4096;
  return a;
}

Entry sample_entry() { return Entry{43, 7, sample_attr(), 1000, 2000}; }

// One request per op, with every member that op carries set to something
// other than its default, so a member left off the wire would show.
std::vector<Request> sample_requests() {
  std::vector<Request> out;
  auto add = [&](Op op, auto&& fill) {
    Request m = request(op);
    fill(m);
    out.push_back(std::move(m));
  };
  add(Op::kLookup, [](Request& m) { m.name = "file.txt"; });
  add(Op::kGetattr, [](Request& m) { m.handle = 9; });
  add(Op::kSetattr, [](Request& m) {
    m.set = kSetMode | kSetUid | kSetGid | kSetSize | kSetAtime | kSetMtime | kSetAtimeNow | kSetMtimeNow;
    m.mode = 0600;
    m.uid_to = 1;
    m.gid_to = 2;
    m.size_to = 1ULL << 40;
    m.atime_to = {1, 2};
    m.mtime_to = {-3, 999'999'999};
    m.handle = 5;
  });
  add(Op::kReadlink, [](Request&) {});
  add(Op::kMknod, [](Request& m) {
    m.mode = 0010644;
    m.rdev = 0x0801;
    m.name = "fifo";
  });
  add(Op::kMkdir, [](Request& m) {
    m.mode = 0755;
    m.name = "dir";
  });
  add(Op::kUnlink, [](Request& m) { m.name = "gone"; });
  add(Op::kRmdir, [](Request& m) { m.name = "empty"; });
  add(Op::kSymlink, [](Request& m) {
    m.name = "link";
    m.target = "../some/where";
  });
  add(Op::kRename, [](Request& m) {
    m.name = "old";
    m.new_parent = 77;
    m.target = "new";
    m.flags = 1;
  });
  add(Op::kLink, [](Request& m) {
    m.new_parent = 78;
    m.name = "hard";
  });
  add(Op::kOpen, [](Request& m) { m.flags = 02 | 01000; });
  add(Op::kRead, [](Request& m) {
    m.handle = 11;
    m.offset = 1ULL << 33;
    m.size = kMaxData;
  });
  add(Op::kWrite, [](Request& m) {
    m.handle = 12;
    m.offset = 4096;
    m.data = bytes_of("hello, world");
  });
  add(Op::kFlush, [](Request& m) { m.handle = 13; });
  add(Op::kRelease, [](Request& m) { m.handle = 14; });
  add(Op::kFsync, [](Request& m) {
    m.handle = 15;
    m.flags = 1;
  });
  add(Op::kOpendir, [](Request&) {});
  add(Op::kReaddir, [](Request& m) {
    m.handle = 16;
    m.offset = 3;
    m.size = 4096;
  });
  add(Op::kReleasedir, [](Request& m) { m.handle = 17; });
  add(Op::kStatfs, [](Request&) {});
  add(Op::kAccess, [](Request& m) { m.flags = 4 | 2; });
  add(Op::kCreate, [](Request& m) {
    m.mode = 0100644;
    m.flags = 01 | 0100;
    m.name = "new.txt";
  });
  add(Op::kFallocate, [](Request& m) {
    m.handle = 18;
    m.offset = 100;
    m.length = 200;
    m.mode = 1;
  });
  return out;
}

// One successful answer per op, with the members that op answers with set.
ReplyBody sample_reply(Op op) {
  ReplyBody b;
  switch (op) {
    case Op::kLookup:
    case Op::kMknod:
    case Op::kMkdir:
    case Op::kSymlink:
    case Op::kLink:
      b.entry = sample_entry();
      break;
    case Op::kCreate:
      b.entry = sample_entry();
      b.open = {99, true, false};
      break;
    case Op::kGetattr:
    case Op::kSetattr:
      b.attr = sample_attr();
      break;
    case Op::kOpen:
      b.open = {98, false, true};
      break;
    case Op::kOpendir:
      b.open = {97, true, true};
      break;
    case Op::kRead:
      b.data = bytes_of("contents");
      break;
    case Op::kWrite:
      b.written = 12;
      break;
    case Op::kReaddir:
      b.entries = {{1, 1, 0040000, "sub"},  {2, 2, 0100000, "file"}, {3, 3, 0120000, "link"}, {4, 4, 0010000, "fifo"},
                   {5, 5, 0140000, "sock"}, {6, 6, 0020000, "tty"},  {7, 7, 0060000, "disk"}};
      break;
    case Op::kStatfs:
      b.statfs = {1000, 500, 400, 100, 50, 4096, 4096, 255};
      break;
    case Op::kReadlink:
      b.target = "/etc/hostname";
      break;
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kRename:
    case Op::kFlush:
    case Op::kRelease:
    case Op::kFsync:
    case Op::kReleasedir:
    case Op::kAccess:
    case Op::kFallocate:
      break;
  }
  return b;
}

std::vector<Op> all_ops() {
  std::vector<Op> out;
  for (std::uint8_t op = 1; op <= kMaxOp; ++op) out.push_back(static_cast<Op>(op));
  return out;
}

std::vector<Frame> sample_frames() {
  std::vector<Frame> out = {
      Ready{},
      Mount{1, false, "/mnt/work"},
      Mount{kMaxMounts, true, "/"},
      MountResult{1, 0, ""},
      MountResult{2, 13, "mkdir /mnt/x: Permission denied"},
      Unmount{1},
      Forget{3, {{42, 1}, {43, 1ULL << 40}}},
      Reply{7, 0, encode_reply_body(Op::kLookup, sample_reply(Op::kLookup))},
      Reply{8, 2, {}},
      Reply{9, 0, {}},
  };
  for (const Request& m : sample_requests()) out.push_back(m);
  return out;
}

Bytes frame_body(std::uint8_t version, std::uint8_t type, std::initializer_list<std::uint8_t> fields = {}) {
  Bytes out{std::byte{version}, std::byte{type}};
  for (auto b : fields) out.push_back(std::byte{b});
  return out;
}

Bytes body_of(const Frame& frame) {
  Bytes out = encode(frame);
  return Bytes(out.begin() + 4, out.end());
}

}  // namespace

TEST_CASE("fs codec: every frame type survives encode then decode") {
  std::set<std::size_t> kinds;
  for (const Frame& f : sample_frames()) {
    kinds.insert(f.index());
    auto back = round(f);
    INFO("frame kind " << f.index());
    REQUIRE(back.has_value());
    CHECK(*back == f);
  }
  CHECK(kinds.size() == std::variant_size_v<Frame>);
}

TEST_CASE("fs codec: every op's request survives encode then decode") {
  auto requests = sample_requests();
  REQUIRE(requests.size() == kMaxOp);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const Request& m = requests[i];
    INFO(to_string(m.op));
    CHECK(static_cast<std::size_t>(m.op) == i + 1);
    auto back = round(m);
    REQUIRE(back.has_value());
    REQUIRE(std::holds_alternative<Request>(*back));
    CHECK(std::get<Request>(*back) == m);
  }
}

TEST_CASE("fs codec: a request carries only the members of its op") {
  // Members another op would use are not on the wire and come back as defaults.
  for (Request m : sample_requests()) {
    Request full = m;
    if (m.op != Op::kFsync && m.op != Op::kRename && m.op != Op::kOpen && m.op != Op::kAccess && m.op != Op::kCreate)
      full.flags = 0xdead;
    if (m.op != Op::kRename && m.op != Op::kLink) full.new_parent = 0xbeef;
    if (m.op != Op::kWrite) full.data = bytes_of("stray");
    if (m.op != Op::kRead && m.op != Op::kReaddir) full.size = 5;
    if (m.op != Op::kFallocate) full.length = 6;
    if (m.op != Op::kSetattr) full.size_to = 7;
    INFO(to_string(m.op));
    auto back = round(full);
    REQUIRE(back.has_value());
    CHECK(std::get<Request>(*back) == m);
  }
}

TEST_CASE("fs codec: a request is its header, then its op's members") {
  Request m = request(Op::kLookup);
  m.name = "ab";
  Bytes frame = encode(m);
  Bytes want;
  ByteWriter w(want);
  w.u32(2 + 8 + 4 + 1 + 8 + 4 + 4 + 4 + 2 + 2);
  w.u8(kVersion);
  w.u8(0x03);
  w.u64(m.unique);
  w.u32(3);
  w.u8(1);
  w.u64(42);
  w.u32(1000);
  w.u32(100);
  w.u32(4321);
  w.u16(2);
  w.bytes(as_bytes("ab"));
  CHECK(frame == want);

  // A Reply is unique, error, and the body bytes as they are.
  Bytes reply = encode(Reply{5, 0, bytes_of("xyz")});
  Bytes want_reply;
  ByteWriter r(want_reply);
  r.u32(2 + 8 + 4 + 3);
  r.u8(kVersion);
  r.u8(0x83);
  r.u64(5);
  r.u32(0);
  r.bytes(as_bytes("xyz"));
  CHECK(reply == want_reply);
}

TEST_CASE("fs codec: every op's reply body survives encode then decode") {
  for (Op op : all_ops()) {
    INFO(to_string(op));
    ReplyBody b = sample_reply(op);
    Bytes bytes = encode_reply_body(op, b);
    auto back = decode_reply_body(op, bytes);
    REQUIRE(back.has_value());
    CHECK(*back == b);
    // Inside a Reply frame too.
    auto frame = round(Reply{1, 0, bytes});
    REQUIRE(frame.has_value());
    CHECK(std::get<Reply>(*frame).body == bytes);
  }
}

TEST_CASE("fs codec: a reply body holds only what its op answers with") {
  ReplyBody everything;
  everything.entry = sample_entry();
  everything.attr = sample_attr();
  everything.open = {1, true, true};
  everything.data = bytes_of("x");
  everything.written = 1;
  everything.entries = {{1, 1, 0040000, "d"}};
  everything.statfs = {1, 1, 1, 1, 1, 1, 1, 1};
  everything.target = "t";
  for (Op op : all_ops()) {
    INFO(to_string(op));
    auto back = decode_reply_body(op, encode_reply_body(op, everything));
    REQUIRE(back.has_value());
    ReplyBody want = sample_reply(op);
    // The members the sample sets are the ones on the wire: take those from `everything`.
    ReplyBody expect;
    if (!(want.entry == Entry{})) expect.entry = everything.entry;
    if (!(want.attr == Attr{})) expect.attr = everything.attr;
    if (!(want.open == OpenFile{})) expect.open = everything.open;
    if (!want.data.empty()) expect.data = everything.data;
    if (want.written != 0) expect.written = everything.written;
    if (!want.entries.empty()) expect.entries = everything.entries;
    if (!(want.statfs == StatFs{})) expect.statfs = everything.statfs;
    if (!want.target.empty()) expect.target = everything.target;
    CHECK(*back == expect);
  }
  // The ops that answer with nothing have an empty body.
  for (Op op : {Op::kUnlink, Op::kRmdir, Op::kRename, Op::kFlush, Op::kRelease, Op::kFsync, Op::kReleasedir,
                Op::kAccess, Op::kFallocate}) {
    INFO(to_string(op));
    CHECK(encode_reply_body(op, everything).empty());
  }
}

TEST_CASE("fs codec: every truncation of every frame and reply body is refused") {
  for (const Frame& f : sample_frames()) {
    // A Reply's body is the rest of the frame, so cutting into it is not
    // detectable here: decode_reply_body finds it.
    Bytes body = body_of(f);
    std::size_t shortest = std::holds_alternative<Reply>(f) ? 2 + 8 + 4 : body.size();
    for (std::size_t n = 0; n < std::min(shortest, body.size()); ++n) {
      INFO("frame kind " << f.index() << " cut at " << n);
      CHECK_FALSE(decode_body(ByteSpan(body).first(n)).has_value());
    }
  }
  for (Op op : all_ops()) {
    Bytes bytes = encode_reply_body(op, sample_reply(op));
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO(to_string(op) << " cut at " << n);
      auto r = decode_reply_body(op, ByteSpan(bytes).first(n));
      CHECK_FALSE(r.has_value());
    }
  }
}

TEST_CASE("fs codec: trailing bytes are refused, in frames and in reply bodies") {
  for (const Frame& f : sample_frames()) {
    if (std::holds_alternative<Reply>(f)) continue;  // its body is the rest of the frame
    Bytes body = body_of(f);
    body.push_back(std::byte{0});
    INFO("frame kind " << f.index());
    CHECK(reason(decode_body(body)) == "frame has trailing bytes");
  }
  for (Op op : all_ops()) {
    Bytes bytes = encode_reply_body(op, sample_reply(op));
    bytes.push_back(std::byte{0});
    INFO(to_string(op));
    CHECK(reason(decode_reply_body(op, bytes)) == "reply body has trailing bytes");
  }
}

TEST_CASE("fs codec: a wrong version, an unknown frame type and a short header are refused") {
  CHECK(decode_body(frame_body(kVersion, 0x01)).has_value());
  CHECK(reason(decode_body(frame_body(kVersion + 1, 0x01))) == "unsupported mounts protocol version");
  CHECK(reason(decode_body(frame_body(0, 0x01))) == "unsupported mounts protocol version");
  for (std::uint8_t type : {0x00, 0x05, 0x7f, 0x80, 0x84, 0xff}) {
    INFO(int(type));
    CHECK(reason(decode_body(frame_body(kVersion, type, {0, 0, 0, 1}))) == "unknown frame type");
  }
  CHECK(reason(decode_body(Bytes{std::byte{kVersion}})) == "frame shorter than its version and type");
  CHECK(reason(decode_body(Bytes{})) == "frame shorter than its version and type");
}

TEST_CASE("fs codec: unknown ops are refused in requests and reply bodies") {
  for (int op : {0, kMaxOp + 1, 0x80, 0xff}) {
    INFO(op);
    Request m = request(static_cast<Op>(op));
    CHECK(reason(round(m)) == "unknown op");
    CHECK(reason(decode_reply_body(static_cast<Op>(op), {})) == "unknown op");
  }
}

TEST_CASE("fs codec: names that are not one directory entry's are refused") {
  std::vector<std::string> bad = {"", ".", "..", "a/b", "/", std::string("a\0b", 3), std::string(kMaxName + 1, 'n')};
  CHECK(valid_name(std::string(kMaxName, 'n')));
  CHECK(valid_name("..."));
  CHECK(valid_name(".hidden"));
  for (const auto& name : bad) CHECK_FALSE(valid_name(name));

  for (Request m : sample_requests()) {
    bool has_name = !m.name.empty();
    if (!has_name) continue;
    m.name = std::string(kMaxName, 'n');
    INFO(to_string(m.op));
    CHECK(round(m).has_value());
    for (const auto& name : bad) {
      m.name = name;
      INFO("name of " << name.size() << " bytes");
      auto r = round(m);
      REQUIRE_FALSE(r.has_value());
      if (name.size() > kMaxName)
        CHECK(reason(r) == "name longer than 255 bytes");
      else
        CHECK(reason(r) == "name is empty, \".\" or \"..\", or holds '/' or NUL");
    }
  }
  // A rename's new name is a name too.
  Request rename = sample_requests()[static_cast<std::size_t>(Op::kRename) - 1];
  for (const auto& name : bad) {
    rename.target = name;
    CHECK_FALSE(round(rename).has_value());
  }
  // And so is every readdir entry's.
  for (const auto& name : bad) {
    ReplyBody b;
    b.entries = {{1, 1, 0040000, "ok"}, {2, 2, 0100000, name}};
    CHECK_FALSE(decode_reply_body(Op::kReaddir, encode_reply_body(Op::kReaddir, b)).has_value());
  }
}

TEST_CASE("fs codec: symlink and readlink targets are 1..4095 bytes without NUL") {
  Request m = sample_requests()[static_cast<std::size_t>(Op::kSymlink) - 1];
  ReplyBody b;
  m.target = std::string(kMaxPath, 't');
  b.target = m.target;
  CHECK(round(m).has_value());
  CHECK(decode_reply_body(Op::kReadlink, encode_reply_body(Op::kReadlink, b)).has_value());
  // A target may hold '/' and be "." or "..": it is a path, not a name.
  for (std::string ok : {"/", ".", "..", "a//b"}) {
    m.target = ok;
    CHECK(round(m).has_value());
  }
  auto refused = [&](const std::string& target, std::string_view why) {
    INFO(target.size() << " bytes");
    m.target = target;
    b.target = target;
    CHECK(reason(round(m)) == why);
    CHECK(reason(decode_reply_body(Op::kReadlink, encode_reply_body(Op::kReadlink, b))) == why);
  };
  refused(std::string(kMaxPath + 1, 't'), "symlink target longer than 4095 bytes");
  refused("", "symlink target is empty");
  refused(std::string("a\0b", 3), "string holds a NUL byte");
}

TEST_CASE("fs codec: setattr refuses unknown bits and nanoseconds of a second or more") {
  Request m = sample_requests()[static_cast<std::size_t>(Op::kSetattr) - 1];
  m.set = kSetattrMask;
  CHECK(round(m).has_value());
  for (std::uint32_t bit = 8; bit < 32; ++bit) {
    m.set = 1u << bit;
    CHECK(reason(round(m)) == "setattr bits outside the known ones");
  }
  m.set = kSetAtime;
  m.atime_to.nsec = 999'999'999;
  CHECK(round(m).has_value());
  m.atime_to.nsec = 1'000'000'000;
  CHECK(reason(round(m)) == "nanoseconds not below 1e9");
  m.atime_to.nsec = 0;
  m.mtime_to.nsec = 0xffffffff;
  CHECK(reason(round(m)) == "nanoseconds not below 1e9");
}

TEST_CASE("fs codec: attributes with nanoseconds of a second or more are refused") {
  for (int which = 0; which < 3; ++which) {
    ReplyBody b;
    b.attr = sample_attr();
    Timespec& t = which == 0 ? b.attr.atime : which == 1 ? b.attr.mtime : b.attr.ctime;
    t.nsec = 1'000'000'000;
    INFO(which);
    CHECK(reason(decode_reply_body(Op::kGetattr, encode_reply_body(Op::kGetattr, b))) == "nanoseconds not below 1e9");
    ReplyBody e;
    e.entry.attr = b.attr;
    CHECK(reason(decode_reply_body(Op::kLookup, encode_reply_body(Op::kLookup, e))) == "nanoseconds not below 1e9");
  }
}

TEST_CASE("fs codec: read and write sizes are bounded by kMaxData") {
  Request read = sample_requests()[static_cast<std::size_t>(Op::kRead) - 1];
  read.size = kMaxData;
  CHECK(round(read).has_value());
  read.size = kMaxData + 1;
  CHECK(reason(round(read)) == "read or readdir size above 1 MiB");
  Request readdir = sample_requests()[static_cast<std::size_t>(Op::kReaddir) - 1];
  readdir.size = kMaxData + 1;
  CHECK(reason(round(readdir)) == "read or readdir size above 1 MiB");

  Request write = sample_requests()[static_cast<std::size_t>(Op::kWrite) - 1];
  write.data = Bytes(kMaxData, std::byte{'w'});
  Bytes frame = encode(write);
  CHECK(frame.size() - 4 <= kMaxFrameBody);
  CHECK(decode_body(ByteSpan(frame).subspan(4)).has_value());
  write.data.push_back(std::byte{'w'});
  CHECK(reason(round(write)) == "data longer than 1 MiB");

  ReplyBody b;
  b.data = Bytes(kMaxData, std::byte{'r'});
  Bytes reply = encode(Reply{1, 0, encode_reply_body(Op::kRead, b)});
  CHECK(reply.size() - 4 <= kMaxFrameBody);
  auto back = decode_body(ByteSpan(reply).subspan(4));
  REQUIRE(back.has_value());
  CHECK(decode_reply_body(Op::kRead, std::get<Reply>(*back).body).has_value());
  b.data.push_back(std::byte{'r'});
  CHECK(reason(decode_reply_body(Op::kRead, encode_reply_body(Op::kRead, b))) == "data longer than 1 MiB");

  ReplyBody w;
  w.written = kMaxData;
  CHECK(decode_reply_body(Op::kWrite, encode_reply_body(Op::kWrite, w)).has_value());
  w.written = kMaxData + 1;
  CHECK(reason(decode_reply_body(Op::kWrite, encode_reply_body(Op::kWrite, w))) ==
        "written more than one write carries");
}

TEST_CASE("fs codec: fsync flags are datasync or nothing") {
  Request m = sample_requests()[static_cast<std::size_t>(Op::kFsync) - 1];
  m.flags = 0;
  CHECK(round(m).has_value());
  m.flags = 2;
  CHECK(reason(round(m)) == "fsync flags other than datasync");
}

TEST_CASE("fs codec: a forget has 1..kMaxForgets items") {
  Forget f{1, {}};
  CHECK(reason(round(f)) == "forget with no items");
  f.items.assign(kMaxForgets, {5, 1});
  auto back = round(f);
  REQUIRE(back.has_value());
  CHECK(*back == Frame{f});
  f.items.push_back({6, 1});
  CHECK(reason(round(f)) == "more than 1024 forgets");
  // A count the frame cannot hold is a truncation, found before reserving.
  Bytes body = frame_body(kVersion, 0x04, {0, 0, 0, 1, 0, 0, 0, 2});
  body.resize(body.size() + 16);
  CHECK(reason(decode_body(body)) == "frame body is truncated");
}

TEST_CASE("fs codec: a mount path is absolute, without NUL, at most kMaxPath bytes") {
  CHECK(round(Mount{1, false, "/" + std::string(kMaxPath - 1, 'p')}).has_value());
  CHECK(reason(round(Mount{1, false, "/" + std::string(kMaxPath, 'p')})) == "mount path longer than 4095 bytes");
  CHECK(reason(round(Mount{1, false, "relative/path"})) == "mount path is not absolute");
  CHECK(reason(round(Mount{1, false, ""})) == "mount path is not absolute");
  CHECK(reason(round(Mount{1, false, std::string("/mnt\0x", 6)})) == "string holds a NUL byte");
}

TEST_CASE("fs codec: mount flags other than read_only are refused") {
  Bytes body = body_of(Mount{1, true, "/m"});
  REQUIRE(body[2 + 4] == std::byte{1});
  for (std::uint8_t flags : {2, 3, 0x80, 0xff}) {
    body[2 + 4] = std::byte{flags};
    CHECK(reason(decode_body(body)) == "mount flags beyond read_only");
  }
}

TEST_CASE("fs codec: a mount result's error is not negative and its message is a short string") {
  CHECK(round(MountResult{1, 0x7fffffff, std::string(1024, 'm')}).has_value());
  CHECK(reason(round(MountResult{1, -1, ""})) == "mount error is negative");
  CHECK(reason(round(MountResult{1, 5, std::string(1025, 'm')})) == "message longer than 1024 bytes");
  CHECK(reason(round(MountResult{1, 5, std::string("a\0", 2)})) == "string holds a NUL byte");
}

TEST_CASE("fs codec: a reply's error is 0 or an errno, and a failed reply has no body") {
  CHECK(round(Reply{1, 4095, {}}).has_value());
  CHECK(round(Reply{1, 1, {}}).has_value());
  for (std::int32_t error : {-1, 4096, -4095, 0x7fffffff, static_cast<std::int32_t>(0x80000000u)}) {
    INFO(error);
    CHECK(reason(round(Reply{1, error, {}})) == "reply error is neither 0 nor an errno");
  }
  CHECK(reason(round(Reply{1, 2, bytes_of("x")})) == "failed reply has a body");
}

TEST_CASE("fs codec: readdir answers are bounded, typed and named") {
  ReplyBody b;
  b.entries.assign(kMaxDirEntries, DirEntry{1, 2, 0100000, "f"});
  Bytes bytes = encode_reply_body(Op::kReaddir, b);
  auto back = decode_reply_body(Op::kReaddir, bytes);
  REQUIRE(back.has_value());
  CHECK(back->entries.size() == kMaxDirEntries);
  b.entries.push_back(DirEntry{1, 2, 0100000, "f"});
  CHECK(reason(decode_reply_body(Op::kReaddir, encode_reply_body(Op::kReaddir, b))) ==
        "more than 4096 directory entries");
  // The end of a directory: no entries.
  CHECK(decode_reply_body(Op::kReaddir, encode_reply_body(Op::kReaddir, ReplyBody{})).has_value());
  for (std::uint32_t type : {0u, 0170000u, 0100644u, 1u, 0030000u}) {
    ReplyBody t;
    t.entries = {{1, 1, type, "x"}};
    INFO(type);
    CHECK(reason(decode_reply_body(Op::kReaddir, encode_reply_body(Op::kReaddir, t))) ==
          "directory entry type is not a file type");
  }
  // A count the body cannot hold fails before anything is reserved.
  Bytes huge;
  ByteWriter w(huge);
  w.u32(kMaxDirEntries);
  CHECK(reason(decode_reply_body(Op::kReaddir, huge)) == "reply body is truncated");
}

TEST_CASE("fs codec: open answers carry direct_io and keep_cache, nothing else") {
  ReplyBody b;
  b.open = {1, true, true};
  Bytes bytes = encode_reply_body(Op::kOpen, b);
  REQUIRE(bytes.back() == std::byte{3});
  for (std::uint8_t flags : {4, 8, 0x80, 0xff}) {
    bytes.back() = std::byte{flags};
    CHECK(reason(decode_reply_body(Op::kOpen, bytes)) == "open flags beyond direct_io and keep_cache");
  }
}

TEST_CASE("fs splitter: frames split at every byte boundary come out whole") {
  Bytes stream;
  for (const Frame& f : sample_frames()) encode(f, stream);
  FrameSplitter s;
  std::vector<Frame> got;
  for (std::byte b : stream) {
    s.feed(ByteSpan(&b, 1));
    while (auto body = s.next()) {
      auto f = decode_body(*body);
      REQUIRE(f.has_value());
      got.push_back(*f);
    }
  }
  CHECK_FALSE(s.failed());
  CHECK(got == sample_frames());
  CHECK(s.buffered() == 0);
}

TEST_CASE("fs splitter: many frames in one feed, and a frame cut across feeds") {
  Bytes stream;
  for (int i = 0; i < 100; ++i) encode(Unmount{static_cast<std::uint32_t>(i)}, stream);
  Bytes tail = encode(Mount{7, false, "/cut"});
  stream.insert(stream.end(), tail.begin(), tail.begin() + 5);
  FrameSplitter s;
  s.feed(stream);
  for (std::uint32_t i = 0; i < 100; ++i) {
    auto body = s.next();
    REQUIRE(body.has_value());
    auto f = decode_body(*body);
    REQUIRE(f.has_value());
    CHECK(*f == Frame{Unmount{i}});
  }
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered() == 5);
  s.feed(ByteSpan(tail).subspan(5));
  auto body = s.next();
  REQUIRE(body.has_value());
  CHECK(*decode_body(*body) == Frame{Mount{7, false, "/cut"}});
  CHECK(s.buffered() == 0);
  CHECK_FALSE(s.failed());
}

TEST_CASE("fs splitter: a body that does not decode does not stop the stream") {
  Bytes stream;
  ByteWriter w(stream);
  w.u32(3);
  w.u8(kVersion);
  w.u8(0x7f);
  w.u8(0);
  encode(Ready{}, stream);
  FrameSplitter s;
  s.feed(stream);
  auto bad = s.next();
  REQUIRE(bad.has_value());
  CHECK_FALSE(decode_body(*bad).has_value());
  auto good = s.next();
  REQUIRE(good.has_value());
  CHECK(decode_body(*good).has_value());
}

TEST_CASE("fs splitter: a declared length above kMaxFrameBody or below 2 fails it for good") {
  for (std::uint32_t length : {kMaxFrameBody + 1, 0xffffffffu, 0u, 1u}) {
    INFO(length);
    FrameSplitter s;
    Bytes stream;
    ByteWriter w(stream);
    w.u32(length);
    s.feed(stream);
    CHECK_FALSE(s.next().has_value());
    CHECK(s.failed());
    CHECK(s.buffered() == 0);
    // Nothing after it is trusted, not even a good frame.
    s.feed(encode(Ready{}));
    CHECK_FALSE(s.next().has_value());
    CHECK(s.failed());
    CHECK(s.buffered() == 0);
  }
  // The largest body there may be is one.
  FrameSplitter s;
  Bytes stream;
  ByteWriter w(stream);
  w.u32(kMaxFrameBody);
  stream.resize(stream.size() + kMaxFrameBody);
  s.feed(stream);
  auto body = s.next();
  REQUIRE(body.has_value());
  CHECK(body->size() == kMaxFrameBody);
  CHECK_FALSE(s.failed());
}

TEST_CASE("fs splitter: a failure after good frames ends the stream there") {
  Bytes stream = encode(Ready{});
  ByteWriter w(stream);
  w.u32(kMaxFrameBody + 1);
  encode(Ready{}, stream);
  FrameSplitter s;
  s.feed(stream);
  CHECK(s.next().has_value());
  CHECK_FALSE(s.next().has_value());
  CHECK(s.failed());
}

TEST_CASE("fs messages: ops have lowercase names, and the modifying ones are known") {
  std::set<std::string> names;
  for (Op op : all_ops()) names.insert(to_string(op));
  CHECK(names.size() == kMaxOp);
  CHECK(std::string_view(to_string(Op::kLookup)) == "lookup");
  CHECK(std::string_view(to_string(Op::kReleasedir)) == "releasedir");
  CHECK(std::string_view(to_string(Op::kFallocate)) == "fallocate");
  CHECK(std::string_view(to_string(static_cast<Op>(0))) == "unknown");
  std::set<Op> modifying = {Op::kSetattr, Op::kMknod, Op::kMkdir,  Op::kUnlink, Op::kRmdir,    Op::kSymlink,
                            Op::kRename,  Op::kLink,  Op::kCreate, Op::kWrite,  Op::kFallocate};
  for (Op op : all_ops()) {
    INFO(to_string(op));
    CHECK(modifies(op) == (modifying.count(op) == 1));
  }
}
