#include "daemon/service/auth_token.hpp"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <thread>

#include "scratch_dir.hpp"

using namespace sandboxd::service;
using sandboxd::service::test::file_mode;
using sandboxd::service::test::fresh_dir;
using sandboxd::service::test::read_file;
using sandboxd::service::test::write_file;

namespace {
bool is_lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
}  // namespace

TEST_CASE("token: created with 256 random bits in a private file, then read back") {
  auto dir = fresh_dir("token");
  auto file = dir / "state" / "sandboxd" / "token";
  bool created = false;
  auto token = load_or_create_token(file, &created);
  REQUIRE(token);
  CHECK(created);
  CHECK(token->size() == 64);
  CHECK(is_lower_hex(*token));
  CHECK(file_mode(file) == 0600);
  CHECK(file_mode(dir / "state") == 0700);
  CHECK(file_mode(dir / "state" / "sandboxd") == 0700);
  CHECK(read_file(file) == *token + "\n");
  // No temporary file is left beside it.
  CHECK(std::distance(std::filesystem::directory_iterator(file.parent_path()), {}) == 1);

  auto again = load_or_create_token(file, &created);
  REQUIRE(again);
  CHECK_FALSE(created);
  CHECK(*again == *token);

  auto other = load_or_create_token(dir / "other-token");
  REQUIRE(other);
  CHECK(*other != *token);
}

TEST_CASE("token: an existing file is used as it is, trailing blanks removed") {
  auto file = fresh_dir("token-existing") / "token";
  write_file(file, "my-own-token-0123456789 \t\r\n\n", 0600);
  bool created = true;
  auto token = load_or_create_token(file, &created);
  REQUIRE(token);
  CHECK_FALSE(created);
  CHECK(*token == "my-own-token-0123456789");
  CHECK(read_file(file) == "my-own-token-0123456789 \t\r\n\n");
}

TEST_CASE("token: a file others may read is refused") {
  auto file = fresh_dir("token-shared") / "token";
  write_file(file, "0123456789abcdef0123456789abcdef\n", 0644);
  auto token = load_or_create_token(file);
  REQUIRE_FALSE(token);
  CHECK(token.error().find("mode 0644") != std::string::npos);
  CHECK(token.error().find("chmod 600 " + file.string()) != std::string::npos);
  CHECK(token.error().find("0123456789abcdef") == std::string::npos);
  ::chmod(file.c_str(), 0640);
  CHECK_FALSE(load_or_create_token(file));
  ::chmod(file.c_str(), 0620);
  CHECK_FALSE(load_or_create_token(file));
  ::chmod(file.c_str(), 0600);
  CHECK(load_or_create_token(file));
  ::chmod(file.c_str(), 0400);
  CHECK(load_or_create_token(file));
}

TEST_CASE("token: a file of another user is refused") {
  if (::geteuid() != 0) return;  // only root can give a file away
  auto file = fresh_dir("token-owner") / "token";
  write_file(file, "0123456789abcdef0123456789abcdef\n", 0600);
  REQUIRE(::chown(file.c_str(), 65534, 65534) == 0);
  auto token = load_or_create_token(file);
  REQUIRE_FALSE(token);
  CHECK(token.error().find("belongs to uid 65534") != std::string::npos);
}

TEST_CASE("token: bad content and bad files are refused") {
  auto dir = fresh_dir("token-bad");
  write_file(dir / "short", "0123456789abcde\n", 0600);
  auto short_token = load_or_create_token(dir / "short");
  REQUIRE_FALSE(short_token);
  CHECK(short_token.error().find("fewer than 16 characters") != std::string::npos);

  write_file(dir / "empty", "", 0600);
  CHECK_FALSE(load_or_create_token(dir / "empty"));

  write_file(dir / "words", "0123456789 abcdef0123\n", 0600);
  auto words = load_or_create_token(dir / "words");
  REQUIRE_FALSE(words);
  CHECK(words.error().find("one word") != std::string::npos);

  write_file(dir / "large", std::string(5000, 'a'), 0600);
  CHECK_FALSE(load_or_create_token(dir / "large"));

  std::filesystem::create_directory(dir / "a-dir");
  auto directory = load_or_create_token(dir / "a-dir");
  REQUIRE_FALSE(directory);
  CHECK(directory.error().find("is not a regular file") != std::string::npos);

  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  auto fifo = load_or_create_token(dir / "fifo");  // must not block waiting for a writer
  REQUIRE_FALSE(fifo);
  CHECK(fifo.error().find("is not a regular file") != std::string::npos);

  write_file(dir / "plain-file", "x", 0600);
  CHECK_FALSE(load_or_create_token(dir / "plain-file" / "token"));
  CHECK_FALSE(load_or_create_token(""));
}

TEST_CASE("token: of concurrent creators exactly one creates, all get its token") {
  auto file = fresh_dir("token-race") / "sub" / "token";
  constexpr int kCreators = 8;
  std::vector<std::string> tokens(kCreators);
  std::vector<int> created(kCreators, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCreators; ++i) {
    threads.emplace_back([&, i] {
      bool c = false;
      auto t = load_or_create_token(file, &c);
      tokens[i] = t ? *t : "error: " + t.error();
      created[i] = c ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(std::count(created.begin(), created.end(), 1) == 1);
  for (const auto& t : tokens) CHECK(t == tokens[0]);
  CHECK(tokens[0].size() == 64);
  CHECK(std::distance(std::filesystem::directory_iterator(file.parent_path()), {}) == 1);
}

TEST_CASE("token: default file") {
  auto file = default_token_file();
  if (::geteuid() == 0)
    CHECK(file == "/var/lib/sandboxd/token");
  else
    CHECK(file.filename() == "token");
}

TEST_CASE("token: comparison") {
  const std::string expected = "0123456789abcdef0123456789abcdef";
  CHECK(token_matches(expected, expected));
  CHECK(token_matches(std::string(expected), expected));
  CHECK_FALSE(token_matches("0123456789abcdef0123456789abcdeF", expected));
  CHECK_FALSE(token_matches("X123456789abcdef0123456789abcdef", expected));
  CHECK_FALSE(token_matches("0123456789abcdef", expected));
  CHECK_FALSE(token_matches(expected + "0", expected));
  CHECK_FALSE(token_matches("", expected));
  CHECK_FALSE(token_matches("", ""));
  CHECK_FALSE(token_matches("anything", ""));
  // A presented token padded with NULs is still shorter or longer, never equal.
  CHECK_FALSE(token_matches(std::string_view("abc\0", 4), "abc"));
}

TEST_CASE("token: acceptable tokens") {
  CHECK(is_acceptable_token("0123456789abcdef"));
  CHECK(is_acceptable_token("A-Z_a.z~0+9/=!#$%&'()*,:;<>?@[]^`{|}"));
  CHECK_FALSE(is_acceptable_token("0123456789abcde"));
  CHECK_FALSE(is_acceptable_token("0123456789 abcdef"));
  CHECK_FALSE(is_acceptable_token("0123456789\tabcdef"));
  CHECK_FALSE(is_acceptable_token("0123456789abcdef\x7f"));
  CHECK_FALSE(is_acceptable_token("0123456789abcdef\xc3\xa9"));
  CHECK_FALSE(is_acceptable_token(std::string(kMaxTokenLength + 1, 'a')));
  CHECK(is_acceptable_token(std::string(kMaxTokenLength, 'a')));
}

TEST_CASE("token: bearer header") {
  CHECK(bearer_token("Bearer abc") == "abc");
  CHECK(bearer_token("bearer abc") == "abc");
  CHECK(bearer_token("BEARER\tabc") == "abc");
  CHECK(bearer_token("  Bearer    abc.def-ghi==  ") == "abc.def-ghi==");
  CHECK(bearer_token("Bearer abc\t") == "abc");
  CHECK_FALSE(bearer_token("Basic abc"));
  CHECK_FALSE(bearer_token("Bearer"));
  CHECK_FALSE(bearer_token("Bearer "));
  CHECK_FALSE(bearer_token("Bearer   "));
  CHECK_FALSE(bearer_token("Bearerabc"));
  CHECK_FALSE(bearer_token("Bearer a b"));
  CHECK_FALSE(bearer_token("Bear abc"));
  CHECK_FALSE(bearer_token(""));
  CHECK_FALSE(bearer_token("   "));
  CHECK_FALSE(bearer_token("abc"));
}

TEST_CASE("origin: what is an origin") {
  for (const char* ok :
       {"https://example.com", "http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:3000",
        "https://[2001:db8::1]", "chrome-extension://abcdef", "HTTPS://Example.COM:443", "app+x.y-z://h_1"})
    CHECK(is_origin(ok));
  for (const char* bad :
       {"", "*", "null", "example.com", "https://", "https://example.com/", "https://example.com/path",
        "https://user@example.com", "https://example.com?q", "https://example.com:", "https://example.com:0",
        "https://example.com:65536", "https://example.com:8080x", "https://[::1", "https://[]", "https://[xyz]:80",
        "1http://example.com", "://example.com", "https://exa mple.com"})
    CHECK_FALSE(is_origin(bad));
}

TEST_CASE("origin: allowed origins") {
  const std::vector<std::string> allowed = {"https://app.example.com", "http://localhost:3000", "http://[::1]:8080"};
  CHECK(origin_allowed("https://app.example.com", allowed));
  CHECK(origin_allowed("https://APP.Example.com", allowed));
  CHECK(origin_allowed("HTTPS://app.example.com", allowed));
  CHECK(origin_allowed("https://app.example.com:443", allowed));
  CHECK(origin_allowed("http://localhost:3000", allowed));
  CHECK(origin_allowed("http://[::1]:8080", allowed));
  CHECK_FALSE(origin_allowed("http://app.example.com", allowed));
  CHECK_FALSE(origin_allowed("https://app.example.com:8443", allowed));
  CHECK_FALSE(origin_allowed("https://evil.example.com", allowed));
  CHECK_FALSE(origin_allowed("https://app.example.com.evil.com", allowed));
  CHECK_FALSE(origin_allowed("http://localhost", allowed));
  CHECK_FALSE(origin_allowed("http://localhost:3001", allowed));
  CHECK_FALSE(origin_allowed("https://app.example.com/", allowed));
  CHECK_FALSE(origin_allowed("null", allowed));
  CHECK_FALSE(origin_allowed("", allowed));
  CHECK_FALSE(origin_allowed("https://app.example.com", {}));
  // The default port written out in the list matches an origin without it.
  CHECK(origin_allowed("https://a.example", {"https://a.example:443"}));
  CHECK(origin_allowed("ws://a.example", {"ws://a.example:80"}));
  CHECK_FALSE(origin_allowed("https://a.example", {"https://a.example:80"}));

  CHECK(origin_allowed("https://anything.example", {"*"}));
  CHECK(origin_allowed("null", {"http://x.example", "*"}));
  CHECK(origin_allowed("not an origin", {"*"}));
}
