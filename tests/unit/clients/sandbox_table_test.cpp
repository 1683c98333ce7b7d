#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include "clients/sandboxctl/key_values.hpp"
#include "clients/sandboxctl/sandbox_table.hpp"

using namespace sandboxd::ctl;

TEST_CASE("ages use the largest unit that fits") {
  CHECK(format_age(0) == "0s");
  CHECK(format_age(59'999) == "59s");
  CHECK(format_age(60'000) == "1m");
  CHECK(format_age(3'599'000) == "59m");
  CHECK(format_age(3'600'000) == "1h");
  CHECK(format_age(47LL * 3'600'000) == "47h");
  CHECK(format_age(48LL * 3'600'000) == "2d");
  CHECK(format_age(-5) == "0s");
}

TEST_CASE("the sandbox table lines up its columns") {
  auto sandboxes = boost::json::parse(R"([
    {"id":"sb-3f9c1e0a7b2d","state":"ready","image":"default","cpus":1,"memory_mib":256,
     "labels":{"z":"1","job":"42"},"created_at":1000000},
    {"id":"sb-1","state":"booting","image":"python-large","cpus":4,"memory_mib":4096,"labels":{},
     "created_at":1000000000}
  ])").as_array();
  auto table = format_sandbox_table(sandboxes, 1000000 + 90'000);
  CHECK(table ==
        "ID               STATE    IMAGE         CPUS  MEM      AGE  LABELS\n"
        "sb-3f9c1e0a7b2d  ready    default       1     256MiB   1m   job=42,z=1\n"
        "sb-1             booting  python-large  4     4096MiB  0s   -\n");
}

TEST_CASE("missing or odd members print as dashes") {
  auto sandboxes = boost::json::parse(R"([{"id":"sb-2"}, 7])").as_array();
  auto table = format_sandbox_table(sandboxes, 0);
  CHECK(table ==
        "ID    STATE  IMAGE  CPUS  MEM  AGE  LABELS\n"
        "sb-2  -      -      -     -    -    -\n"
        "?     -      -      -     -    -    -\n");
  CHECK(format_sandbox_table(boost::json::array(), 0) == "ID  STATE  IMAGE  CPUS  MEM  AGE  LABELS\n");
}

TEST_CASE("K=V arguments split at the first =") {
  auto parsed = parse_key_values({"job=42", "expr=a=b", "empty=", "job=43"}, "--label");
  REQUIRE(parsed);
  CHECK(parsed->at("job").as_string() == "43");
  CHECK(parsed->at("expr").as_string() == "a=b");
  CHECK(parsed->at("empty").as_string() == "");
  for (const char* bad : {"novalue", "=x"}) {
    auto refused = parse_key_values({bad}, "--env");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().find("--env") == 0);
  }
}
