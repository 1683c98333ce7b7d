#include "daemon/net/tls/leaf_minter.hpp"

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <utility>

#include "daemon/net/tls/client_hello.hpp"

namespace sandboxd::net::tls {

namespace {

constexpr std::size_t kMaxCommonNameLength = 64;  // ub-common-name, RFC 5280 appendix A

struct LeafName {
  std::string text;  // lower case; an IPv6 literal without brackets
  bool ip = false;
};

Expected<LeafName, std::string> leaf_name(std::string_view raw) {
  ClassifiedName classified = classify_server_name(raw);
  if (classified.status == SniStatus::kIpLiteral) {
    std::string_view text = classified.name;
    if (text.size() >= 2 && text.front() == '[') text = text.substr(1, text.size() - 2);
    return LeafName{std::string(text), true};
  }
  if (classified.status != SniStatus::kHostName) return Unexpected{std::string(classified.error)};
  return LeafName{std::move(classified.name), false};
}

std::time_t to_time_t(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

bool add_subject_alt_name(X509* cert, const LeafName& name, bool critical) {
  UniqueGeneralNames names(GENERAL_NAMES_new());
  UniqueGeneralName entry(GENERAL_NAME_new());
  if (!names || !entry) return false;
  if (name.ip) {
    ASN1_OCTET_STRING* address = a2i_IPADDRESS(name.text.c_str());
    if (address == nullptr) return false;
    GENERAL_NAME_set0_value(entry.get(), GEN_IPADD, address);
  } else {
    ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
    if (dns == nullptr) return false;
    if (ASN1_STRING_set(dns, name.text.data(), static_cast<int>(name.text.size())) != 1) {
      ASN1_IA5STRING_free(dns);
      return false;
    }
    GENERAL_NAME_set0_value(entry.get(), GEN_DNS, dns);
  }
  if (sk_GENERAL_NAME_push(names.get(), entry.get()) <= 0) return false;
  (void)entry.release();  // the stack owns it now
  return X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), critical ? 1 : 0, X509V3_ADD_DEFAULT) == 1;
}

}  // namespace

LeafMinter::LeafMinter(std::shared_ptr<const CertificateAuthority> authority, Options options)
    : options_(options), key_(generate_p256_key()), authority_(std::move(authority)) {
  if (!key_) throw std::runtime_error(openssl_error("generating the leaf key"));
  if (!authority_) throw std::invalid_argument("LeafMinter needs a certificate authority");
}

Expected<std::shared_ptr<const LeafCertificate>, std::string> LeafMinter::mint(std::string_view raw_name) {
  auto name = leaf_name(raw_name);
  if (!name) return Unexpected{name.error()};
  const auto now = std::chrono::system_clock::now();
  std::shared_ptr<const CertificateAuthority> authority;
  {
    std::lock_guard lock(mutex_);
    if (auto it = by_name_.find(name->text); it != by_name_.end()) {
      if ((now - it->second->leaf->minted_at) * 2 < options_.validity) {
        lru_.splice(lru_.begin(), lru_, it->second);
        ++counters_.cache_hits;
        return it->second->leaf;
      }
    }
    authority = authority_;
  }

  auto leaf = mint_uncached(name->text, name->ip, authority);
  if (!leaf) return leaf;

  std::lock_guard lock(mutex_);
  ++counters_.mints;
  if (options_.cache_capacity == 0 || authority_ != authority) return leaf;
  if (auto it = by_name_.find(name->text); it != by_name_.end()) {
    lru_.erase(it->second);
    by_name_.erase(it);
  }
  lru_.push_front(Entry{name->text, *leaf});
  by_name_.emplace(name->text, lru_.begin());
  while (lru_.size() > options_.cache_capacity) {
    by_name_.erase(lru_.back().name);
    lru_.pop_back();
  }
  return leaf;
}

Expected<std::shared_ptr<const LeafCertificate>, std::string> LeafMinter::mint_uncached(
    const std::string& text, bool ip, const std::shared_ptr<const CertificateAuthority>& authority) const {
  const LeafName name{text, ip};
  const auto now = std::chrono::system_clock::now();
  const std::time_t now_t = std::chrono::system_clock::to_time_t(now);
  const std::time_t not_before = now_t - static_cast<std::time_t>(options_.backdate.count());
  const std::time_t not_after = std::min(now_t + static_cast<std::time_t>(options_.validity.count()),
                                         to_time_t(X509_get0_notAfter(authority->certificate())));
  if (not_after <= now_t) return Unexpected{std::string("tls: the interception CA has expired; rotate it")};

  UniqueX509 cert(X509_new());
  UniqueAsn1Integer serial = random_serial(128);
  if (!cert || !serial) return Unexpected{openssl_error("allocating a leaf certificate")};
  const bool common_name = name.text.size() <= kMaxCommonNameLength;
  bool ok = X509_set_version(cert.get(), X509_VERSION_3) == 1 && X509_set_serialNumber(cert.get(), serial.get()) == 1 &&
            X509_set_issuer_name(cert.get(), X509_get_subject_name(authority->certificate())) == 1 &&
            ASN1_TIME_set(X509_getm_notBefore(cert.get()), not_before) != nullptr &&
            ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after) != nullptr &&
            X509_set_pubkey(cert.get(), key_.get()) == 1;
  if (ok && common_name) {
    ok = X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(name.text.c_str()), -1, -1, 0) == 1;
  }
  X509* issuer = authority->certificate();
  ok = ok && add_subject_alt_name(cert.get(), name, !common_name) &&
       add_extension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE") &&
       add_extension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature") &&
       add_extension(cert.get(), issuer, NID_ext_key_usage, "serverAuth") &&
       add_extension(cert.get(), issuer, NID_subject_key_identifier, "hash") &&
       add_extension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always") &&
       X509_sign(cert.get(), authority->key(), EVP_sha256()) > 0;
  if (!ok) return Unexpected{openssl_error(("minting a leaf certificate for " + name.text).c_str())};
  return std::make_shared<const LeafCertificate>(LeafCertificate{name.text, std::move(cert), authority, now});
}

void LeafMinter::set_authority(std::shared_ptr<const CertificateAuthority> authority) {
  if (!authority) throw std::invalid_argument("LeafMinter needs a certificate authority");
  std::lock_guard lock(mutex_);
  authority_ = std::move(authority);
  by_name_.clear();
  lru_.clear();
}

std::shared_ptr<const CertificateAuthority> LeafMinter::authority() const {
  std::lock_guard lock(mutex_);
  return authority_;
}

LeafMinterCounters LeafMinter::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

std::size_t LeafMinter::cached() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace sandboxd::net::tls
