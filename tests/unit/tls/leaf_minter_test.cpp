#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/net/tls/certificate_authority.hpp"
#include "daemon/net/tls/leaf_minter.hpp"
#include "tls_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::tls;
using namespace sandboxd::net::tls::test;

namespace {

std::shared_ptr<const CertificateAuthority> make_ca() {
  auto ca = CertificateAuthority::create_ephemeral();
  REQUIRE(ca.has_value());
  return std::make_shared<const CertificateAuthority>(std::move(*ca));
}

std::shared_ptr<const LeafCertificate> mint(LeafMinter& minter, std::string_view name) {
  auto leaf = minter.mint(name);
  INFO((leaf ? "" : leaf.error()));
  REQUIRE(leaf.has_value());
  return *leaf;
}

struct SubjectAltNames {
  std::vector<std::pair<int, std::string>> entries;  // type, value (IP as raw bytes)
  bool critical = false;
};

SubjectAltNames subject_alt_names(X509* cert) {
  SubjectAltNames out;
  int critical = -1;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr));
  if (names == nullptr) return out;
  out.critical = critical == 1;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    const auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(n, &type));
    out.entries.emplace_back(type, std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                                               static_cast<std::size_t>(ASN1_STRING_length(value))));
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string common_name(X509* cert) {
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) < 0) return {};
  return cn;
}

long validity_seconds(X509* cert) {
  int days = 0;
  int seconds = 0;
  ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
  return days * 86400L + seconds;
}

}  // namespace

TEST_CASE("leaf: verifies against the CA for its name only, strictly") {
  auto ca = make_ca();
  LeafMinter minter(ca);
  auto leaf = mint(minter, "api.example.com");
  CHECK(verify_leaf(leaf->x509(), ca->certificate(), "api.example.com") == X509_V_OK);
  CHECK(verify_leaf(leaf->x509(), ca->certificate(), "API.Example.COM") == X509_V_OK);
  CHECK(verify_leaf(leaf->x509(), ca->certificate(), "other.example.com") == X509_V_ERR_HOSTNAME_MISMATCH);
  CHECK(verify_leaf(leaf->x509(), ca->certificate(), "example.com") == X509_V_ERR_HOSTNAME_MISMATCH);
  // Against some other CA it does not verify at all.
  auto stranger = make_ca();
  CHECK(verify_leaf(leaf->x509(), stranger->certificate(), "api.example.com") != X509_V_OK);
}

TEST_CASE("leaf: one SAN, serverAuth, digitalSignature, not a CA, AKI = CA's SKI") {
  auto ca = make_ca();
  LeafMinter minter(ca);
  auto leaf = mint(minter, "Mixed.Example.com");
  X509* cert = leaf->x509();
  CHECK(leaf->name == "mixed.example.com");
  const auto san = subject_alt_names(cert);
  REQUIRE(san.entries.size() == 1);
  CHECK(san.entries[0] == std::pair<int, std::string>{GEN_DNS, "mixed.example.com"});
  CHECK_FALSE(san.critical);
  CHECK(common_name(cert) == "mixed.example.com");
  CHECK((X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) != 0);
  CHECK(X509_get_extended_key_usage(cert) == XKU_SSL_SERVER);
  CHECK(X509_get_key_usage(cert) == KU_DIGITAL_SIGNATURE);
  CHECK((X509_get_extension_flags(cert) & EXFLAG_CA) == 0);
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert);
  REQUIRE(aki != nullptr);
  CHECK(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca->certificate())) == 0);
  CHECK(X509_get0_subject_key_id(cert) != nullptr);
  CHECK(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca->certificate())) == 0);
  CHECK(EVP_PKEY_eq(X509_get0_pubkey(cert), minter.key()) == 1);
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  CHECK(ASN1_STRING_length(serial) >= 15);
  CHECK(ASN1_STRING_length(serial) <= 17);
}

TEST_CASE("leaf: backdated, valid for the configured time") {
  auto ca = make_ca();
  LeafMinter minter(ca);
  auto leaf = mint(minter, "example.com");
  CHECK(X509_cmp_current_time(X509_get0_notBefore(leaf->x509())) < 0);
  CHECK(X509_cmp_current_time(X509_get0_notAfter(leaf->x509())) > 0);
  CHECK(validity_seconds(leaf->x509()) == 7 * 86400 + 3600);

  LeafMinter shorter(ca, {.cache_capacity = 4, .validity = std::chrono::hours(2), .backdate = std::chrono::minutes(5)});
  CHECK(validity_seconds(mint(shorter, "example.com")->x509()) == 2 * 3600 + 300);
}

TEST_CASE("leaf: never valid past the CA") {
  auto ca = make_ca();
  LeafMinter minter(ca, {.cache_capacity = 4, .validity = std::chrono::hours(24 * 365 * 20)});
  auto leaf = mint(minter, "example.com");
  CHECK(ASN1_TIME_compare(X509_get0_notAfter(leaf->x509()), X509_get0_notAfter(ca->certificate())) == 0);
  CHECK(verify_leaf(leaf->x509(), ca->certificate(), "example.com") == X509_V_OK);
}

TEST_CASE("leaf: serials differ between mints") {
  auto ca = make_ca();
  LeafMinter minter(ca, {.cache_capacity = 0});
  std::set<std::string> serials;
  for (int i = 0; i < 8; ++i) {
    auto leaf = mint(minter, "example.com");
    const ASN1_INTEGER* s = X509_get0_serialNumber(leaf->x509());
    serials.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    static_cast<std::size_t>(ASN1_STRING_length(s)));
  }
  CHECK(serials.size() == 8);
  CHECK(minter.counters().mints == 8);
  CHECK(minter.cached() == 0);
}

TEST_CASE("leaf: an IP literal gets an iPAddress SAN") {
  auto ca = make_ca();
  LeafMinter minter(ca);
  auto leaf = mint(minter, "192.0.2.7");
  const auto san = subject_alt_names(leaf->x509());
  REQUIRE(san.entries.size() == 1);
  CHECK(san.entries[0].first == GEN_IPADD);
  CHECK(san.entries[0].second == std::string("\xc0\x00\x02\x07", 4));
  CHECK(verify_leaf(leaf->x509(), ca->certificate(), "192.0.2.7", true) == X509_V_OK);
  CHECK(verify_leaf(leaf->x509(), ca->certificate(), "192.0.2.8", true) == X509_V_ERR_IP_ADDRESS_MISMATCH);
}

TEST_CASE("leaf: a name longer than 64 characters has no CN and a critical SAN") {
  auto ca = make_ca();
  LeafMinter minter(ca);
  const std::string name = std::string(40, 'a') + "." + std::string(40, 'b') + ".example.com";
  auto leaf = mint(minter, name);
  CHECK(common_name(leaf->x509()).empty());
  const auto san = subject_alt_names(leaf->x509());
  REQUIRE(san.entries.size() == 1);
  CHECK(san.critical);
  CHECK(verify_leaf(leaf->x509(), ca->certificate(), name) == X509_V_OK);
}

TEST_CASE("leaf: names that could cover more than one host are refused") {
  auto ca = make_ca();
  LeafMinter minter(ca);
  for (const char* name : {"*.example.com", "a,b.example.com", "example.com.", "", "bad name", "1.2.3", "a\x01.com"}) {
    INFO(name);
    CHECK_FALSE(minter.mint(name).has_value());
  }
  CHECK(minter.counters().mints == 0);
}

TEST_CASE("leaf: the cache returns the same certificate and counts hits") {
  auto ca = make_ca();
  LeafMinter minter(ca);
  auto first = mint(minter, "example.com");
  auto again = mint(minter, "EXAMPLE.com");
  CHECK(first == again);
  CHECK(minter.counters().mints == 1);
  CHECK(minter.counters().cache_hits == 1);
}

TEST_CASE("leaf: a cached leaf is minted again once half its validity has passed") {
  auto ca = make_ca();
  LeafMinter minter(ca,
                    {.cache_capacity = 4, .validity = std::chrono::seconds(1), .backdate = std::chrono::seconds(0)});
  auto first = mint(minter, "example.com");
  CHECK(mint(minter, "example.com") == first);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  auto fresh = mint(minter, "example.com");
  CHECK(fresh != first);
  CHECK(mint(minter, "example.com") == fresh);
  CHECK(minter.counters().mints == 2);
  CHECK(minter.cached() == 1);
}

TEST_CASE("leaf: the cache evicts the least recently used name at capacity") {
  auto ca = make_ca();
  LeafMinter minter(ca, {.cache_capacity = 2});
  auto a = mint(minter, "a.example");
  auto b = mint(minter, "b.example");
  CHECK(mint(minter, "a.example") == a);  // a is now the most recent
  mint(minter, "c.example");              // evicts b
  CHECK(minter.cached() == 2);
  CHECK(mint(minter, "a.example") == a);
  CHECK(minter.counters().mints == 3);
  CHECK(mint(minter, "b.example") != b);  // minted again
  CHECK(minter.counters().mints == 4);
  CHECK(minter.counters().cache_hits == 2);
  CHECK(minter.cached() == 2);
}

TEST_CASE("leaf: after rotation leaves come from the new CA") {
  auto old_ca = make_ca();
  LeafMinter minter(old_ca);
  auto old_leaf = mint(minter, "example.com");
  auto new_ca = make_ca();
  minter.set_authority(new_ca);
  CHECK(minter.cached() == 0);
  auto new_leaf = mint(minter, "example.com");
  CHECK(new_leaf != old_leaf);
  CHECK(new_leaf->authority == new_ca);
  CHECK(verify_leaf(new_leaf->x509(), new_ca->certificate(), "example.com") == X509_V_OK);
  CHECK(verify_leaf(old_leaf->x509(), new_ca->certificate(), "example.com") != X509_V_OK);
  CHECK(minter.counters().mints == 2);
}

TEST_CASE("leaf: minting from several threads at once") {
  auto ca = make_ca();
  LeafMinter minter(ca, {.cache_capacity = 8});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&minter, t] {
      for (int i = 0; i < 20; ++i) {
        auto leaf = minter.mint("host" + std::to_string((i + t) % 12) + ".example");
        if (!leaf) std::abort();
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto c = minter.counters();
  CHECK(c.mints + c.cache_hits == 80);
  CHECK(minter.cached() <= 8);
}
