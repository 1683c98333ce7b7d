// The interception CA: the key and self-signed certificate that sign the leaf
// certificates the daemon presents to guests in place of the real servers'.
// Guests trust it through their trust store (certificate_pem()); nothing
// outside the sandbox ever should.
//
// Owns: creating the CA (ECDSA P-256; CN "sandboxd interception CA <id>";
// basicConstraints critical CA:TRUE, pathlen:0; keyUsage critical keyCertSign
// and cRLSign; SKI and AKI; valid ten years from a day ago, so a guest whose
// clock lags still accepts it), persisting it as `ca.key` and `ca.crt` (PEM)
// in a directory, loading it back, and replacing it (rotate).
//
// The key file is written to a fresh temporary file (O_CREAT|O_EXCL, mode
// 0600), synced, then renamed over `ca.key`, and the directory is synced, so
// a crash leaves the old key or the new one, never half of one, never a
// readable one (a temporary file a crash left is removed on the next write). Loading refuses a key file that is not a
// regular file owned by the current user with no group or other permission bits, a key that does not match the
// certificate, and a certificate that is not a CA, is not self-signed or has expired. If only one of the two files
// exists (a crash between the two renames of a first creation, or a hand edit) loading fails and says so: `rotate`
// makes a fresh pair.
//
// An instance is immutable once made, so it may be shared between threads
// (LeafMinter holds it by shared_ptr<const>). key() and certificate() return
// non-const pointers only because OpenSSL's signing calls take them; callers
// must not modify the objects.
//
// Deliberately not done: key encryption at rest (the directory's permissions
// are the protection, like an ssh host key), intermediate CAs, CRLs or OCSP.
#pragma once

#include <filesystem>
#include <string>

#include "daemon/net/tls/openssl_handles.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::tls {

class CertificateAuthority {
 public:
  // Loads the CA in `dir`, or creates it (and `dir`, mode 0700) on first use.
  static Expected<CertificateAuthority, std::string> load_or_create(const std::filesystem::path& dir);
  // Makes a new CA in `dir`, replacing the files of any previous one.
  static Expected<CertificateAuthority, std::string> rotate(const std::filesystem::path& dir);
  // A CA that lives only in memory (tests, throwaway daemons).
  static Expected<CertificateAuthority, std::string> create_ephemeral();

  // The certificate in PEM, for the guest's trust store.
  const std::string& certificate_pem() const { return certificate_pem_; }
  // Lower-case hex SHA-256 of the certificate's DER: changes on rotation.
  const std::string& fingerprint() const { return fingerprint_; }
  // The certificate's subject CN.
  const std::string& common_name() const { return common_name_; }

  EVP_PKEY* key() const { return key_.get(); }
  X509* certificate() const { return certificate_.get(); }

 private:
  CertificateAuthority(UniqueEvpPkey key, UniqueX509 certificate);

  UniqueEvpPkey key_;
  UniqueX509 certificate_;
  std::string certificate_pem_;
  std::string fingerprint_;
  std::string common_name_;
};

}  // namespace sandboxd::net::tls
