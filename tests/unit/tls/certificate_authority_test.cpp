#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

#include "daemon/net/tls/certificate_authority.hpp"
#include "daemon/net/tls/leaf_minter.hpp"
#include "tls_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::tls;
using namespace sandboxd::net::tls::test;
namespace fs = std::filesystem;

namespace {

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& p, const std::string& text, mode_t mode) {
  fs::remove(p);
  std::ofstream(p) << text;
  ::chmod(p.c_str(), mode);
}

long seconds_from_now(const ASN1_TIME* t) {
  int days = 0;
  int seconds = 0;
  ASN1_TIME_diff(&days, &seconds, nullptr, t);
  return days * 86400L + seconds;
}

}  // namespace

TEST_CASE("ca: first call creates the key (0600) and certificate in a new directory") {
  TempDir tmp;
  const fs::path dir = tmp.path() / "state" / "ca";
  auto ca = CertificateAuthority::load_or_create(dir);
  REQUIRE(ca.has_value());
  CHECK(fs::is_regular_file(dir / "ca.key"));
  CHECK(fs::is_regular_file(dir / "ca.crt"));
  CHECK(mode_of(dir / "ca.key") == 0600);
  CHECK(mode_of(dir) == 0700);
  CHECK(read_text(dir / "ca.crt") == ca->certificate_pem());
  CHECK(ca->certificate_pem().rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
  CHECK(ca->fingerprint().size() == 64);
  // No temporary files are left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  CHECK(entries == 2);
}

TEST_CASE("ca: the certificate is a P-256 CA constrained to sign leaves") {
  auto ca = CertificateAuthority::create_ephemeral();
  REQUIRE(ca.has_value());
  X509* cert = ca->certificate();
  CHECK(ca->common_name().rfind("sandboxd interception CA ", 0) == 0);
  CHECK(ca->common_name().size() == std::string("sandboxd interception CA ").size() + 8);
  CHECK(EVP_PKEY_get_base_id(ca->key()) == EVP_PKEY_EC);
  CHECK(EVP_PKEY_get_bits(ca->key()) == 256);
  CHECK((X509_get_extension_flags(cert) & EXFLAG_CA) != 0);
  CHECK(X509_get_pathlen(cert) == 0);
  CHECK(X509_get_key_usage(cert) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(X509_get0_subject_key_id(cert) != nullptr);
  int critical = -1;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &critical, nullptr));
  REQUIRE(bc != nullptr);
  CHECK(critical == 1);
  BASIC_CONSTRAINTS_free(bc);
  auto* ku = static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(cert, NID_key_usage, &critical, nullptr));
  REQUIRE(ku != nullptr);
  CHECK(critical == 1);
  ASN1_BIT_STRING_free(ku);
  // Backdated a day, valid ten years.
  CHECK(seconds_from_now(X509_get0_notBefore(cert)) == Approx(-86400).margin(60));
  CHECK(seconds_from_now(X509_get0_notAfter(cert)) == Approx(3652L * 86400).margin(60));
  CHECK(X509_self_signed(cert, 1) == 1);
}

TEST_CASE("ca: a later call loads the same CA") {
  TempDir tmp;
  auto first = CertificateAuthority::load_or_create(tmp.path());
  REQUIRE(first.has_value());
  auto again = CertificateAuthority::load_or_create(tmp.path());
  REQUIRE(again.has_value());
  CHECK(again->fingerprint() == first->fingerprint());
  CHECK(again->certificate_pem() == first->certificate_pem());
  CHECK(EVP_PKEY_eq(again->key(), first->key()) == 1);
}

TEST_CASE("ca: a key readable by others is refused") {
  TempDir tmp;
  REQUIRE(CertificateAuthority::load_or_create(tmp.path()).has_value());
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ::chmod((tmp.path() / "ca.key").c_str(), mode);
    auto refused = CertificateAuthority::load_or_create(tmp.path());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().find("mode 0600") != std::string::npos);
  }
  ::chmod((tmp.path() / "ca.key").c_str(), 0400);
  CHECK(CertificateAuthority::load_or_create(tmp.path()).has_value());
}

TEST_CASE("ca: rotate makes a new CA and replaces the files") {
  TempDir tmp;
  auto first = CertificateAuthority::load_or_create(tmp.path());
  REQUIRE(first.has_value());
  auto rotated = CertificateAuthority::rotate(tmp.path());
  REQUIRE(rotated.has_value());
  CHECK(rotated->fingerprint() != first->fingerprint());
  CHECK(mode_of(tmp.path() / "ca.key") == 0600);
  auto loaded = CertificateAuthority::load_or_create(tmp.path());
  REQUIRE(loaded.has_value());
  CHECK(loaded->fingerprint() == rotated->fingerprint());
}

TEST_CASE("ca: temporary files a crash left are removed by the next write") {
  TempDir tmp;
  REQUIRE(CertificateAuthority::load_or_create(tmp.path()).has_value());
  write_text(tmp.path() / ".ca.key.tmp-0123456789abcdef", "half a key", 0600);
  REQUIRE(CertificateAuthority::rotate(tmp.path()).has_value());
  CHECK_FALSE(fs::exists(tmp.path() / ".ca.key.tmp-0123456789abcdef"));
}

TEST_CASE("ca: a key that does not match the certificate is refused") {
  TempDir a;
  TempDir b;
  REQUIRE(CertificateAuthority::load_or_create(a.path()).has_value());
  REQUIRE(CertificateAuthority::load_or_create(b.path()).has_value());
  write_text(a.path() / "ca.key", read_text(b.path() / "ca.key"), 0600);
  auto refused = CertificateAuthority::load_or_create(a.path());
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().find("does not match") != std::string::npos);
}

TEST_CASE("ca: a certificate that is not a CA is refused") {
  TempDir tmp;
  auto ca = CertificateAuthority::create_ephemeral();
  REQUIRE(ca.has_value());
  auto shared = std::make_shared<const CertificateAuthority>(std::move(*ca));
  LeafMinter minter(shared);
  auto leaf = minter.mint("example.com");
  REQUIRE(leaf.has_value());
  fs::create_directories(tmp.path());
  write_text(tmp.path() / "ca.key", pem_of_key(minter.key()), 0600);
  write_text(tmp.path() / "ca.crt", pem_of_certificate((*leaf)->x509()), 0644);
  auto refused = CertificateAuthority::load_or_create(tmp.path());
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().find("not a CA") != std::string::npos);
}

TEST_CASE("ca: half a CA on disk is refused, and rotate repairs it") {
  TempDir tmp;
  REQUIRE(CertificateAuthority::load_or_create(tmp.path()).has_value());
  fs::remove(tmp.path() / "ca.crt");
  auto refused = CertificateAuthority::load_or_create(tmp.path());
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().find("ca.crt is missing") != std::string::npos);
  REQUIRE(CertificateAuthority::rotate(tmp.path()).has_value());
  CHECK(CertificateAuthority::load_or_create(tmp.path()).has_value());
}

TEST_CASE("ca: garbage in the files is refused with a reason") {
  TempDir tmp;
  REQUIRE(CertificateAuthority::load_or_create(tmp.path()).has_value());
  write_text(tmp.path() / "ca.crt", "not a certificate\n", 0644);
  auto refused = CertificateAuthority::load_or_create(tmp.path());
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().find("reading the certificate") != std::string::npos);
}
