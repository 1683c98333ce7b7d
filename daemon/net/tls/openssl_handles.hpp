// Owning handles for the OpenSSL objects this directory creates, and the text
// of OpenSSL's error queue for an error message.
//
// Every OpenSSL object is held by one of these from the line that creates it,
// so an early return on failure frees it; nothing here calls *_free by hand.
#pragma once

#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace sandboxd::net::tls {

template <auto Free>
struct OpensslDeleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

using UniqueBio = std::unique_ptr<BIO, OpensslDeleter<BIO_free_all>>;
using UniqueBignum = std::unique_ptr<BIGNUM, OpensslDeleter<BN_free>>;
using UniqueEvpPkey = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY_free>>;
using UniqueX509 = std::unique_ptr<X509, OpensslDeleter<X509_free>>;
using UniqueX509Extension = std::unique_ptr<X509_EXTENSION, OpensslDeleter<X509_EXTENSION_free>>;
using UniqueX509Store = std::unique_ptr<X509_STORE, OpensslDeleter<X509_STORE_free>>;
using UniqueX509StoreCtx = std::unique_ptr<X509_STORE_CTX, OpensslDeleter<X509_STORE_CTX_free>>;
using UniqueGeneralNames = std::unique_ptr<GENERAL_NAMES, OpensslDeleter<GENERAL_NAMES_free>>;
using UniqueGeneralName = std::unique_ptr<GENERAL_NAME, OpensslDeleter<GENERAL_NAME_free>>;
using UniqueAsn1OctetString = std::unique_ptr<ASN1_OCTET_STRING, OpensslDeleter<ASN1_OCTET_STRING_free>>;
using UniqueAsn1Integer = std::unique_ptr<ASN1_INTEGER, OpensslDeleter<ASN1_INTEGER_free>>;
using UniqueSslCtx = std::unique_ptr<SSL_CTX, OpensslDeleter<SSL_CTX_free>>;
using UniqueSsl = std::unique_ptr<SSL, OpensslDeleter<SSL_free>>;

// "<what>: <the oldest error in OpenSSL's queue>", emptying the queue so a
// later failure does not report this one.
std::string openssl_error(const char* what);

// A fresh ECDSA P-256 key.
UniqueEvpPkey generate_p256_key();

// Contents of a memory BIO.
std::string bio_contents(BIO* bio);

// Lower-case hex of the SHA-256 of the certificate's DER encoding.
std::string sha256_fingerprint(X509* certificate);

// A random positive serial number of `bits` bits, never zero.
UniqueAsn1Integer random_serial(int bits);

// Adds an extension given in OpenSSL's configuration syntax (fixed strings
// only: never text from outside, which could smuggle in more values).
bool add_extension(X509* certificate, X509* issuer, int nid, const char* value);

}  // namespace sandboxd::net::tls
