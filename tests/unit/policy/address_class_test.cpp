#include <catch2/catch.hpp>

#include <string>

#include "policy/address_class.hpp"
#include "policy_test_support.hpp"

using namespace sandboxd::policy;
using sandboxd::policy::test::ip;

TEST_CASE("address class: every block boundary falls on the right side") {
  struct Case {
    const char* address;
    AddressClass cls;
  };
  const Case cases[] = {
      {"0.0.0.0", AddressClass::kUnspecified},
      {"0.0.0.1", AddressClass::kReserved},
      {"0.1.2.3", AddressClass::kReserved},
      {"0.255.255.255", AddressClass::kReserved},
      {"1.0.0.0", AddressClass::kPublic},
      {"8.8.8.8", AddressClass::kPublic},
      {"9.255.255.255", AddressClass::kPublic},
      {"10.0.0.0", AddressClass::kPrivate},
      {"10.255.255.255", AddressClass::kPrivate},
      {"11.0.0.0", AddressClass::kPublic},
      {"100.63.255.255", AddressClass::kPublic},
      {"100.64.0.0", AddressClass::kCgnat},
      {"100.127.255.255", AddressClass::kCgnat},
      {"100.128.0.0", AddressClass::kPublic},
      {"126.255.255.255", AddressClass::kPublic},
      {"127.0.0.0", AddressClass::kLoopback},
      {"127.0.0.1", AddressClass::kLoopback},
      {"127.255.255.255", AddressClass::kLoopback},
      {"128.0.0.0", AddressClass::kPublic},
      {"169.253.255.255", AddressClass::kPublic},
      {"169.254.0.0", AddressClass::kLinkLocal},
      {"169.254.169.254", AddressClass::kLinkLocal},
      {"169.254.255.255", AddressClass::kLinkLocal},
      {"169.255.0.0", AddressClass::kPublic},
      {"172.15.255.255", AddressClass::kPublic},
      {"172.16.0.0", AddressClass::kPrivate},
      {"172.31.255.255", AddressClass::kPrivate},
      {"172.32.0.0", AddressClass::kPublic},
      {"191.255.255.255", AddressClass::kPublic},
      {"192.0.0.0", AddressClass::kReserved},
      {"192.0.0.255", AddressClass::kReserved},
      {"192.0.1.0", AddressClass::kPublic},
      {"192.0.2.0", AddressClass::kReserved},
      {"192.0.2.77", AddressClass::kReserved},
      {"192.0.2.255", AddressClass::kReserved},
      {"192.0.3.0", AddressClass::kPublic},
      {"192.167.255.255", AddressClass::kPublic},
      {"192.168.0.0", AddressClass::kPrivate},
      {"192.168.255.255", AddressClass::kPrivate},
      {"192.169.0.0", AddressClass::kPublic},
      {"198.17.255.255", AddressClass::kPublic},
      {"198.18.0.0", AddressClass::kReserved},
      {"198.19.255.255", AddressClass::kReserved},
      {"198.20.0.0", AddressClass::kPublic},
      {"198.51.99.255", AddressClass::kPublic},
      {"198.51.100.0", AddressClass::kReserved},
      {"198.51.100.255", AddressClass::kReserved},
      {"198.51.101.0", AddressClass::kPublic},
      {"203.0.112.255", AddressClass::kPublic},
      {"203.0.113.0", AddressClass::kReserved},
      {"203.0.113.255", AddressClass::kReserved},
      {"203.0.114.0", AddressClass::kPublic},
      {"223.255.255.255", AddressClass::kPublic},
      {"224.0.0.0", AddressClass::kMulticast},
      {"224.0.0.1", AddressClass::kMulticast},
      {"239.255.255.255", AddressClass::kMulticast},
      {"240.0.0.0", AddressClass::kReserved},
      {"240.0.0.1", AddressClass::kReserved},
      {"255.255.255.254", AddressClass::kReserved},
      {"255.255.255.255", AddressClass::kBroadcast},
  };
  for (const auto& c : cases) {
    INFO(c.address);
    CHECK(to_string(classify(ip(c.address))) == to_string(c.cls));
  }
}

TEST_CASE("address class: names, and which classes a rule may open") {
  struct Case {
    AddressClass cls;
    const char* name;
    bool may_be_named;
  };
  const Case cases[] = {
      {AddressClass::kPublic, "public", true},          {AddressClass::kPrivate, "private", true},
      {AddressClass::kLinkLocal, "link-local", true},   {AddressClass::kCgnat, "cgnat", true},
      {AddressClass::kReserved, "reserved", true},      {AddressClass::kLoopback, "loopback", false},
      {AddressClass::kMulticast, "multicast", false},   {AddressClass::kUnspecified, "unspecified", false},
      {AddressClass::kBroadcast, "broadcast", false},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    CHECK(to_string(c.cls) == c.name);
    CHECK(may_be_named(c.cls) == c.may_be_named);
  }
}

TEST_CASE("address class: the block that gives an address its class") {
  struct Case {
    const char* address;
    const char* block;  // "" for public
  };
  const Case cases[] = {
      {"8.8.8.8", ""},
      {"10.1.2.3", "10.0.0.0/8"},
      {"172.20.0.1", "172.16.0.0/12"},
      {"192.168.1.1", "192.168.0.0/16"},
      {"169.254.169.254", "169.254.0.0/16"},
      {"100.100.0.1", "100.64.0.0/10"},
      {"0.1.2.3", "0.0.0.0/8"},
      {"0.0.0.0", "0.0.0.0"},
      {"198.19.0.1", "198.18.0.0/15"},
      {"240.0.0.1", "240.0.0.0/4"},
      {"255.255.255.255", "255.255.255.255"},
  };
  for (const auto& c : cases) {
    INFO(c.address);
    const auto block = class_block(ip(c.address));
    CHECK((block ? block->to_string() : std::string()) == c.block);
  }
}

TEST_CASE("address class: a range opens a non-public address only from inside its class block") {
  struct Case {
    const char* range;
    const char* address;
    bool opens;
  };
  const Case cases[] = {
      {"10.1.0.0/16", "10.1.2.3", true},
      {"10.0.0.0/8", "10.1.2.3", true},
      {"10.1.2.3/32", "10.1.2.3", true},
      {"10.0.0.0/7", "10.1.2.3", false},  // spills into 11/8, public
      {"0.0.0.0/0", "10.1.2.3", false},
      {"0.0.0.0/0", "8.8.8.8", true},  // public: any range containing it
      {"0.0.0.0/0", "169.254.169.254", false},
      {"169.254.169.254/32", "169.254.169.254", true},
      {"169.254.0.0/16", "169.254.169.254", true},
      {"169.0.0.0/8", "169.254.169.254", false},
      {"172.16.0.0/12", "172.31.0.1", true},
      {"172.0.0.0/8", "172.31.0.1", false},
      {"100.64.0.0/10", "100.64.0.1", true},
      {"100.0.0.0/8", "100.64.0.1", false},
      {"0.0.0.0/8", "0.1.2.3", true},
      {"198.18.0.0/15", "198.19.1.1", true},
      {"240.0.0.0/4", "240.0.0.1", true},
      {"127.0.0.1/32", "127.0.0.1", false},  // loopback never
      {"127.0.0.0/8", "127.0.0.1", false},
      {"224.0.0.0/4", "224.0.0.1", false},
      {"255.255.255.255/32", "255.255.255.255", false},
      {"0.0.0.0/32", "0.0.0.0", false},
      {"10.1.0.0/16", "10.2.0.1", false},  // not in the range at all
  };
  for (const auto& c : cases) {
    INFO(c.range << " " << c.address);
    CHECK(range_opens(test::range(c.range), ip(c.address)) == c.opens);
  }
}

TEST_CASE("address class: only ::ffff:a.b.c.d is read as an IPv4-mapped address") {
  struct Case {
    const char* text;
    const char* v4;  // "" for refused
  };
  const Case cases[] = {
      {"::ffff:10.0.0.1", "10.0.0.1"}, {"::FFFF:1.2.3.4", "1.2.3.4"}, {"::ffff:169.254.169.254", "169.254.169.254"},
      {"::ffff:", ""},                 {"::ffff:1.2.3", ""},          {"::ffff:01.2.3.4", ""},
      {"::1", ""},                     {"::", ""},                    {"2001:db8::1", ""},
      {"::fffe:1.2.3.4", ""},          {"::ffff:0a00:0001", ""},      {"10.0.0.1", ""},
      {"", ""},                        {" ::ffff:1.2.3.4", ""},       {"::ffff:1.2.3.4 ", ""},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const auto a = parse_ipv4_mapped(c.text);
    CHECK((a ? a->to_string() : std::string()) == c.v4);
  }
}
