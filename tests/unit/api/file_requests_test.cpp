#include <catch2/catch.hpp>

#include <cerrno>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "daemon/api/requests.hpp"
#include "daemon/api/wire_format.hpp"
#include "daemon/session/file_ops.hpp"

using namespace sandboxd;
using namespace sandboxd::api;
namespace json = boost::json;

namespace {
json::object obj(const std::string& text) { return json::parse(text).as_object(); }
std::string field_of(const ApiError& e) { return std::string(e.details.at("field").as_string()); }
}  // namespace

TEST_CASE("file requests: paths are absolute, bounded and NUL-free; users and modes are checked") {
  using K = session::FileOpKind;
  auto ok = parse_file_op(obj(R"({"sandbox":"s","path":"/etc/x","user":"sandbox"})"), K::kStat);
  REQUIRE(ok);
  CHECK(ok->sandbox == "s");
  CHECK(ok->params.path == "/etc/x");
  CHECK(ok->params.user == "sandbox");
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"etc"})"), K::kStat).error()) == "path");
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s"})"), K::kStat).error()) == "path");
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"/a\u0000b"})"), K::kStat).error()) == "path");
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"/)" + std::string(4096, 'a') + R"("})"), K::kStat).error()) == "path");
  CHECK(parse_file_op(obj(R"({"sandbox":"s","path":"/)" + std::string(4095, 'a') + R"("})"), K::kStat));
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"/x","user":"a:b"})"), K::kStat).error()) == "user");
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"/x"})"), K::kChmod).error()) == "mode");
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"/x","mode":4096})"), K::kChmod).error()) == "mode");
  auto chmod = parse_file_op(obj(R"({"sandbox":"s","path":"/x","mode":493})"), K::kChmod);
  REQUIRE(chmod);
  CHECK(session::file_tool_argv(chmod->params) == std::vector<std::string>{"chmod", "/x", "755"});
  auto rename = parse_file_op(obj(R"({"sandbox":"s","from":"/a","to":"/b","overwrite":true})"), K::kRename);
  REQUIRE(rename);
  CHECK(session::file_tool_argv(rename->params) == std::vector<std::string>{"rename", "/a", "/b", "1"});
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","from":"/a"})"), K::kRename).error()) == "to");
  auto mkdir = parse_file_op(obj(R"({"sandbox":"s","path":"/a/b","parents":true})"), K::kMkdir);
  REQUIRE(mkdir);
  CHECK(session::file_tool_argv(mkdir->params) == std::vector<std::string>{"mkdir", "/a/b", "755", "1"});
  auto list = parse_file_op(obj(R"({"sandbox":"s","path":"/"})"), K::kList);
  REQUIRE(list);
  CHECK(session::file_tool_argv(list->params) == std::vector<std::string>{"list", "/", "1000"});
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"/","limit":0})"), K::kList).error()) == "limit");
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"/","limit":10001})"), K::kList).error()) == "limit");
  CHECK(field_of(parse_file_op(obj(R"({"sandbox":"s","path":"/","recursive":"yes"})"), K::kRemove).error()) == "recursive");
}

TEST_CASE("file requests: transfers name an id and a write its size") {
  auto read = parse_file_read(obj(R"({"sandbox":"s","transfer":"t-1","path":"/x"})"));
  REQUIRE(read);
  CHECK(read->transfer == "t-1");
  CHECK(field_of(parse_file_read(obj(R"({"sandbox":"s","path":"/x"})")).error()) == "transfer");
  CHECK(field_of(parse_file_read(obj(R"({"sandbox":"s","transfer":"a b","path":"/x"})")).error()) == "transfer");
  auto write = parse_file_write(obj(R"({"sandbox":"s","transfer":"t","path":"/x","size":1073741824,"mode":420})"));
  REQUIRE(write);
  CHECK(write->params.size == 1073741824);
  CHECK(write->params.mode == 0644u);
  CHECK(field_of(parse_file_write(obj(R"({"sandbox":"s","transfer":"t","path":"/x"})")).error()) == "size");
  CHECK(field_of(parse_file_write(obj(R"({"sandbox":"s","transfer":"t","path":"/x","size":-1})")).error()) == "size");
}

TEST_CASE("file errors: the guest's errno becomes a documented code, its words are cleaned") {
  using C = session::ErrorCode;
  CHECK(session::file_error(ENOENT, "").code == C::kNotFound);
  CHECK(session::file_error(EEXIST, "").code == C::kExists);
  CHECK(session::file_error(ENOTDIR, "").code == C::kNotADirectory);
  CHECK(session::file_error(EISDIR, "").code == C::kIsADirectory);
  CHECK(session::file_error(ENOTEMPTY, "").code == C::kNotEmpty);
  CHECK(session::file_error(ENOSPC, "").code == C::kNoSpace);
  CHECK(session::file_error(EACCES, "").code == C::kPermissionDenied);
  CHECK(session::file_error(EPERM, "").code == C::kPermissionDenied);
  CHECK(session::file_error(EROFS, "").code == C::kReadOnly);
  CHECK(session::file_error(ENAMETOOLONG, "").code == C::kNameTooLong);
  CHECK(session::file_error(ELOOP, "").code == C::kSymlinkLoop);
  CHECK(session::file_error(EINVAL, "").code == C::kBadRequest);
  auto other = session::file_error(EIO, "");
  CHECK(other.code == C::kIoError);
  CHECK(other.message.find("errno 5") != std::string::npos);
  CHECK(session::file_error(ENOENT, "").message == "No such file or directory");
  auto said = session::file_error(ENOENT, "read /x: gone\n\x1b[31m\xff" + std::string(5000, 'z'));
  CHECK(said.message.rfind("read /x: gone ?[31m?", 0) == 0);
  CHECK(said.message.size() <= 400);
}

TEST_CASE("file entries in JSON: names that are not UTF-8 are replaced and flagged") {
  protocol::FileEntry e;
  e.kind = protocol::FileKind::kSymlink;
  e.name = "caf\xc3\xa9";
  e.target = "/x";
  e.mtime_ns = 1700000000123456789;
  auto good = to_json(e);
  CHECK(good.at("name").as_string() == "caf\xc3\xa9");
  CHECK(good.at("type").as_string() == "symlink");
  CHECK(good.at("target").as_string() == "/x");
  CHECK(good.at("mtime_ms").as_int64() == 1700000000123);
  CHECK_FALSE(good.contains("lossy"));
  for (const char* bad : {"a\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    e.name = bad;
    auto lossy = to_json(e);
    CHECK(lossy.at("lossy").as_bool());
    CHECK(json::serialize(lossy).find("\xef\xbf\xbd") != std::string::npos);
  }
  e.kind = protocol::FileKind::kFile;
  CHECK_FALSE(to_json(e).contains("target"));
}
