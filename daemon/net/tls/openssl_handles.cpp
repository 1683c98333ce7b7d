#include "daemon/net/tls/openssl_handles.hpp"

#include <array>

#include <openssl/err.h>
#include <openssl/rand.h>

namespace sandboxd::net::tls {

std::string openssl_error(const char* what) {
  std::string out(what);
  const unsigned long code = ERR_get_error();
  if (code != 0) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    out += ": ";
    out += text.data();
  }
  ERR_clear_error();
  return out;
}

UniqueEvpPkey generate_p256_key() {
  // EVP_EC_gen is a macro with a C cast in it; this is what it expands to.
  return UniqueEvpPkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

std::string bio_contents(BIO* bio) {
  std::string out(BIO_ctrl_pending(bio), '\0');
  if (out.empty()) return out;
  const int n = BIO_read(bio, out.data(), static_cast<int>(out.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

std::string sha256_fingerprint(X509* certificate) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (X509_digest(certificate, EVP_sha256(), digest.data(), &length) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0x0f]);
  }
  return out;
}

UniqueAsn1Integer random_serial(int bits) {
  UniqueBignum bn(BN_new());
  if (!bn) return nullptr;
  do {
    if (BN_rand(bn.get(), bits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) return nullptr;
  } while (BN_is_zero(bn.get()));
  return UniqueAsn1Integer(BN_to_ASN1_INTEGER(bn.get(), nullptr));
}

bool add_extension(X509* certificate, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, certificate, nullptr, nullptr, 0);
  UniqueX509Extension ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext && X509_add_ext(certificate, ext.get(), -1) == 1;
}

}  // namespace sandboxd::net::tls
