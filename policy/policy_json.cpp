#include "policy/policy_json.hpp"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/net/wire/dns.hpp"
#include "policy/address_class.hpp"

namespace sandboxd::policy {

namespace json = boost::json;

std::string PolicyError::to_string() const { return path.empty() ? message : path + ": " + message; }

namespace {

// Depth of the deepest valid document ({"rules": [{"ports": [1]}]}) is 4;
// anything deeper is refused before it costs stack or memory.
constexpr std::size_t kMaxDepth = 16;
constexpr std::size_t kMaxLabelLength = 128;
constexpr std::size_t kMaxPathLength = 1024;
constexpr std::size_t kMaxMethodLength = 32;
constexpr std::size_t kMaxKeyInPath = 64;

template <class T>
using Result = Expected<T, PolicyError>;

Unexpected<PolicyError> fail(std::string path, std::string message) {
  return Unexpected{PolicyError{std::move(path), std::move(message)}};
}

std::string member_path(const std::string& parent, std::string_view key) {
  std::string k(key.substr(0, kMaxKeyInPath));
  return parent.empty() ? k : parent + "." + k;
}
std::string item_path(const std::string& parent, std::size_t i) { return parent + "[" + std::to_string(i) + "]"; }

std::string quoted(std::string_view s) { return "\"" + std::string(s.substr(0, kMaxKeyInPath)) + "\""; }

std::string_view kind_name(json::kind k) {
  switch (k) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64: return "an integer";
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "?";
}

Unexpected<PolicyError> wrong_type(const std::string& path, std::string_view wanted, const json::value& v) {
  return fail(path, "must be " + std::string(wanted) + ", not " + std::string(kind_name(v.kind())));
}

Result<std::string_view> as_string(const json::value& v, const std::string& path) {
  if (!v.is_string()) return wrong_type(path, "a string", v);
  const auto& s = v.get_string();
  return std::string_view(s.data(), s.size());
}

// A rule's list member: a non-empty array of at most kMaxListItems.
Result<const json::array*> as_list(const json::value& v, const std::string& path) {
  if (!v.is_array()) return wrong_type(path, "an array", v);
  const auto& a = v.get_array();
  if (a.empty()) return fail(path, "must not be empty (leave the member out instead)");
  if (a.size() > NetworkPolicy::kMaxListItems) {
    return fail(path, "has " + std::to_string(a.size()) + " items; at most " +
                          std::to_string(NetworkPolicy::kMaxListItems) + " are allowed");
  }
  return &a;
}

template <class E, std::size_t N>
Result<E> as_enum(const json::value& v, const std::string& path, const EnumNames<E, N>& names, std::string_view what) {
  auto s = as_string(v, path);
  if (!s) return Unexpected{s.error()};
  if (auto e = names.parse(*s)) return *e;
  return fail(path, "unknown " + std::string(what) + " " + quoted(*s) + "; expected " + names.choices());
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }

// Decimal without sign, spaces or leading zeros; nullopt past `max`.
std::optional<std::uint32_t> parse_decimal(std::string_view s, std::uint32_t max) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

Result<HostPattern> parse_host(std::string_view text, const std::string& path) {
  if (text == "*") return HostPattern{HostPattern::Kind::kAny, ""};
  HostPattern p;
  std::string_view name = text;
  if (name.starts_with("*.")) {
    p.kind = HostPattern::Kind::kSuffix;
    name.remove_prefix(2);
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return fail(path, "the host name is empty");
  for (char c : name) {
    if (c == '*') return fail(path, "'*' may only be the whole host or its first label (\"*.example.com\")");
    if (!(is_lower(c) || is_upper(c) || is_digit(c) || c == '-' || c == '_' || c == '.')) {
      return fail(path, quoted(text) + " is not a host name: it may hold letters, digits, '-', '_' and dots");
    }
  }
  if (name.back() == '.' || !wire::is_valid_dns_name(name)) {
    return fail(path, quoted(text) + " is not a valid DNS name (empty label, or too long)");
  }
  if (p.kind == HostPattern::Kind::kExact && wire::Ipv4Address::parse(name)) {
    return fail(path, quoted(text) + " is an IP address; write it as \"address\"");
  }
  p.name.reserve(name.size());
  for (char c : name) p.name.push_back(is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c);
  return p;
}

Result<AddressRange> parse_address(std::string_view text, const std::string& path) {
  const std::size_t slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  AddressRange range;
  if (addr_text.find(':') != std::string_view::npos) {
    auto mapped = parse_ipv4_mapped(addr_text);
    if (!mapped) return fail(path, quoted(text) + ": only IPv4 and IPv4-mapped IPv6 (::ffff:a.b.c.d) addresses are supported");
    if (slash != std::string_view::npos) {
      return fail(path, quoted(text) + ": an IPv4-mapped address takes no prefix; write the IPv4 range");
    }
    range.base = *mapped;
    return range;
  }
  auto v4 = wire::Ipv4Address::parse(addr_text);
  if (!v4) return fail(path, quoted(text) + " is not an IPv4 address or CIDR range (a.b.c.d or a.b.c.d/n)");
  range.base = *v4;
  if (slash != std::string_view::npos) {
    auto prefix = parse_decimal(text.substr(slash + 1), 32);
    if (!prefix) return fail(path, quoted(text) + ": the prefix length must be a number from 0 to 32");
    range.prefix = static_cast<std::uint8_t>(*prefix);
  }
  AddressRange network = range;
  const std::uint32_t mask = range.prefix == 0 ? 0u : ~std::uint32_t{0} << (32 - range.prefix);
  network.base = wire::Ipv4Address::from_u32(range.base.to_u32() & mask);
  if (network.base != range.base) {
    return fail(path, quoted(text) + " has host bits set; the range is " + network.to_string());
  }
  return range;
}

Result<PortRange> parse_port(const json::value& v, const std::string& path) {
  const auto out_of_range = [&](const std::string& shown) {
    return fail(path, "port " + shown + " is out of range (1 to 65535)");
  };
  if (v.is_int64()) {
    const std::int64_t p = v.get_int64();
    if (p < 1 || p > 65535) return out_of_range(std::to_string(p));
    return PortRange{static_cast<std::uint16_t>(p), static_cast<std::uint16_t>(p)};
  }
  if (v.is_uint64()) {
    // Built in code rather than parsed, a small port can be held as unsigned.
    const std::uint64_t p = v.get_uint64();
    if (p < 1 || p > 65535) return out_of_range(std::to_string(p));
    return PortRange{static_cast<std::uint16_t>(p), static_cast<std::uint16_t>(p)};
  }
  if (!v.is_string()) return wrong_type(path, "a port number or a \"first-last\" range", v);
  const auto& s = v.get_string();
  const std::string_view text(s.data(), s.size());
  const std::size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    return fail(path, quoted(text) + ": a single port is written as a number, a range as \"first-last\"");
  }
  auto first = parse_decimal(text.substr(0, dash), 65535);
  auto last = parse_decimal(text.substr(dash + 1), 65535);
  if (!first || !last || *first == 0 || *last == 0) {
    return fail(path, quoted(text) + " is not a port range \"first-last\" of ports 1 to 65535");
  }
  if (*first > *last) return fail(path, quoted(text) + ": the range's first port is above its last");
  return PortRange{static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last)};
}

bool is_tchar(char c) {
  return is_lower(c) || is_upper(c) || is_digit(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

Result<std::string> parse_method(const json::value& v, const std::string& path) {
  auto s = as_string(v, path);
  if (!s) return Unexpected{s.error()};
  if (s->empty() || s->size() > kMaxMethodLength || !std::all_of(s->begin(), s->end(), is_tchar)) {
    return fail(path, quoted(*s) + " is not an HTTP method (a token of at most 32 characters)");
  }
  // Methods are case-sensitive (RFC 9110): "get" is not GET, and folding it
  // silently would make the rule say something other than what was written.
  if (std::any_of(s->begin(), s->end(), is_lower)) {
    return fail(path, quoted(*s) + ": methods are case-sensitive and written in upper case");
  }
  return std::string(*s);
}

Result<std::string> parse_path_prefix(const json::value& v, const std::string& path) {
  auto s = as_string(v, path);
  if (!s) return Unexpected{s.error()};
  if (s->empty() || s->front() != '/') return fail(path, quoted(*s) + ": a path must start with '/'");
  if (s->size() > kMaxPathLength) return fail(path, "a path is at most 1024 characters");
  for (char c : *s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '?' || c == '#') {
      return fail(path, quoted(*s) + ": a path holds printable ASCII without spaces, '?' or '#'");
    }
  }
  return std::string(*s);
}

Result<std::string> parse_label(const json::value& v, const std::string& path) {
  auto s = as_string(v, path);
  if (!s) return Unexpected{s.error()};
  if (s->empty()) return fail(path, "must not be empty (leave the member out instead)");
  if (s->size() > kMaxLabelLength) return fail(path, "a rule's name is at most 128 bytes");
  for (char c : *s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return fail(path, "a rule's name may not hold control characters");
  }
  return std::string(*s);
}

// Reads each item of a list member with `parse_item` into `out`.
template <class T, class F>
Result<bool> read_list(const json::value& v, const std::string& path, std::vector<T>& out, F parse_item) {
  auto list = as_list(v, path);
  if (!list) return Unexpected{list.error()};
  for (std::size_t i = 0; i < (*list)->size(); ++i) {
    auto item = parse_item((**list)[i], item_path(path, i));
    if (!item) return Unexpected{item.error()};
    out.push_back(std::move(*item));
  }
  return true;
}

Result<Rule> parse_rule(const json::value& v, const std::string& path) {
  if (!v.is_object()) return wrong_type(path, "an object", v);
  Rule rule;
  bool has_verdict = false;
  bool has_tls = false;
  for (const auto& member : v.get_object()) {
    const std::string_view key(member.key().data(), member.key().size());
    const json::value& value = member.value();
    const std::string at = member_path(path, key);
    Result<bool> ok = true;
    if (key == "host") {
      auto s = as_string(value, at);
      if (!s) return Unexpected{s.error()};
      auto host = parse_host(*s, at);
      if (!host) return Unexpected{host.error()};
      rule.host = std::move(*host);
    } else if (key == "address") {
      auto s = as_string(value, at);
      if (!s) return Unexpected{s.error()};
      auto range = parse_address(*s, at);
      if (!range) return Unexpected{range.error()};
      rule.address = *range;
    } else if (key == "ports") {
      ok = read_list(value, at, rule.ports, parse_port);
    } else if (key == "schemes") {
      ok = read_list(value, at, rule.schemes, [](const json::value& item, const std::string& p) {
        return as_enum(item, p, kSchemeNames, "scheme");
      });
    } else if (key == "methods") {
      ok = read_list(value, at, rule.methods, parse_method);
    } else if (key == "paths") {
      ok = read_list(value, at, rule.path_prefixes, parse_path_prefix);
    } else if (key == "verdict") {
      auto verdict = as_enum(value, at, kVerdictNames, "verdict");
      if (!verdict) return Unexpected{verdict.error()};
      rule.verdict = *verdict;
      has_verdict = true;
    } else if (key == "tls") {
      auto tls = as_enum(value, at, kTlsHandlingNames, "tls handling");
      if (!tls) return Unexpected{tls.error()};
      rule.tls = *tls;
      has_tls = true;
    } else if (key == "name") {
      auto label = parse_label(value, at);
      if (!label) return Unexpected{label.error()};
      rule.label = std::move(*label);
    } else {
      return fail(at, "unknown member; a rule has host or address, ports, schemes, methods, paths, verdict, tls and name");
    }
    if (!ok) return Unexpected{ok.error()};
  }

  if (rule.host && rule.address) return fail(path, "give either \"host\" or \"address\", not both");
  if (!rule.host && !rule.address) return fail(path, "a rule needs \"host\" or \"address\"");
  if (!has_verdict) return fail(path, "\"verdict\" is required (allow, deny or ask)");
  const bool only_http = !rule.schemes.empty() && std::all_of(rule.schemes.begin(), rule.schemes.end(), [](Scheme s) {
    return s == Scheme::kHttp || s == Scheme::kHttps;
  });
  if (rule.has_request_conditions() && !only_http) {
    return fail(member_path(path, rule.methods.empty() ? "paths" : "methods"),
                "methods and paths apply to http and https only: give \"schemes\" with only those");
  }
  const bool has_https = rule.schemes.empty() ||
                         std::find(rule.schemes.begin(), rule.schemes.end(), Scheme::kHttps) != rule.schemes.end();
  if (has_tls && !has_https) return fail(member_path(path, "tls"), "tls applies to https, which this rule's schemes leave out");
  if (rule.tls == TlsHandling::kPassthrough && rule.has_request_conditions()) {
    return fail(member_path(path, "tls"), "passthrough leaves TLS closed, so methods and paths could never be checked");
  }
  return rule;
}

// Boost.JSON keeps the last of duplicate keys without a word; a policy
// where {"verdict": "deny", "verdict": "allow"} means allow is a trap, so a
// first pass over the bytes refuses duplicates, naming where they are.
class DuplicateKeyCheck {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  std::optional<PolicyError> duplicate;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) {
    frames_.push_back(Frame{false, 0, {}, {}});
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) { return end_container(); }
  bool on_object_begin(json::error_code&) {
    frames_.push_back(Frame{true, 0, {}, {}});
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) { return end_container(); }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return end_value(); }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key_.append(s.data(), s.size());
    Frame& f = frames_.back();
    if (!f.keys.insert(key_).second) {
      std::string path;
      for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
        const Frame& parent = frames_[i];
        path = parent.is_object ? member_path(path, parent.key) : item_path(path, parent.index);
      }
      duplicate = PolicyError{path, "member " + quoted(key_) + " appears more than once"};
      ec = make_error_code(boost::system::errc::invalid_argument);
      return false;
    }
    f.key = std::move(key_);
    key_.clear();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return end_value(); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return end_value(); }
  bool on_double(double, json::string_view, json::error_code&) { return end_value(); }
  bool on_bool(bool, json::error_code&) { return end_value(); }
  bool on_null(json::error_code&) { return end_value(); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    bool is_object;
    std::size_t index;  // arrays: values finished so far
    std::string key;    // objects: the member being read
    std::set<std::string> keys;
  };

  bool end_container() {
    frames_.pop_back();
    return end_value();
  }
  bool end_value() {
    if (!frames_.empty() && !frames_.back().is_object) ++frames_.back().index;
    return true;
  }

  std::vector<Frame> frames_;
  std::string key_;
};

json::parse_options parse_options() {
  json::parse_options o;
  o.max_depth = kMaxDepth;
  return o;
}

std::string port_text(PortRange p) {
  return std::to_string(p.first) + "-" + std::to_string(p.last);
}

}  // namespace

Expected<NetworkPolicy, PolicyError> policy_from_json(const json::value& document) {
  if (!document.is_object()) return wrong_type("", "a JSON object ({\"rules\": [...]})", document);
  NetworkPolicy policy;
  bool has_rules = false;
  for (const auto& member : document.get_object()) {
    const std::string_view key(member.key().data(), member.key().size());
    const json::value& value = member.value();
    const std::string at = member_path("", key);
    if (key == "rules") {
      if (!value.is_array()) return wrong_type(at, "an array", value);
      const auto& rules = value.get_array();
      if (rules.size() > NetworkPolicy::kMaxRules) {
        return fail(at, "has " + std::to_string(rules.size()) + " rules; at most " +
                            std::to_string(NetworkPolicy::kMaxRules) + " are allowed");
      }
      for (std::size_t i = 0; i < rules.size(); ++i) {
        auto rule = parse_rule(rules[i], item_path(at, i));
        if (!rule) return Unexpected{rule.error()};
        policy.rules.push_back(std::move(*rule));
      }
      has_rules = true;
    } else if (key == "denied_names") {
      auto answer = as_enum(value, at, kDeniedNameAnswerNames, "answer");
      if (!answer) return Unexpected{answer.error()};
      policy.denied_names = *answer;
    } else {
      return fail(at, "unknown member; a policy has rules and denied_names");
    }
  }
  if (!has_rules) return fail("", "\"rules\" is required ([] denies everything)");
  return policy;
}

Expected<NetworkPolicy, PolicyError> parse_policy(ByteSpan document) {
  if (document.size() > kMaxDocumentBytes) {
    return fail("", "the document is " + std::to_string(document.size()) + " bytes; at most " +
                        std::to_string(kMaxDocumentBytes) + " are read");
  }
  const std::string_view text = as_chars(document);
  json::basic_parser<DuplicateKeyCheck> check(parse_options());
  json::error_code ec;
  check.write_some(false, text.data(), text.size(), ec);
  if (check.handler().duplicate) return Unexpected{*check.handler().duplicate};
  if (ec) return fail("", "not JSON: " + ec.message());
  json::value value = json::parse(json::string_view(text.data(), text.size()), ec, {}, parse_options());
  if (ec) return fail("", "not JSON: " + ec.message());
  return policy_from_json(value);
}

json::value policy_to_json(const NetworkPolicy& policy) {
  json::array rules;
  rules.reserve(policy.rules.size());
  for (const Rule& r : policy.rules) {
    json::object o;
    if (r.host) o["host"] = r.host->to_string();
    if (r.address) o["address"] = r.address->to_string();
    if (!r.ports.empty()) {
      json::array ports;
      for (PortRange p : r.ports) {
        if (p.first == p.last) ports.emplace_back(std::int64_t{p.first});
        else ports.emplace_back(port_text(p));
      }
      o["ports"] = std::move(ports);
    }
    if (!r.schemes.empty()) {
      json::array schemes;
      for (Scheme s : r.schemes) schemes.emplace_back(to_string(s));
      o["schemes"] = std::move(schemes);
    }
    if (!r.methods.empty()) {
      json::array methods;
      for (const auto& m : r.methods) methods.emplace_back(m);
      o["methods"] = std::move(methods);
    }
    if (!r.path_prefixes.empty()) {
      json::array paths;
      for (const auto& p : r.path_prefixes) paths.emplace_back(p);
      o["paths"] = std::move(paths);
    }
    o["verdict"] = to_string(r.verdict);
    if (r.tls != TlsHandling::kIntercept) o["tls"] = to_string(r.tls);
    if (!r.label.empty()) o["name"] = r.label;
    rules.emplace_back(std::move(o));
  }
  return json::object{{"rules", std::move(rules)}, {"denied_names", to_string(policy.denied_names)}};
}

}  // namespace sandboxd::policy
