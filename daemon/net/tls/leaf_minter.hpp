// Leaf certificates for intercepted TLS flows: for the name a guest asked for
// (its SNI), a certificate the interception CA signs, which the daemon
// presents in place of the real server's.
//
// Owns: one ECDSA P-256 key shared by every leaf (made at construction; a
// leaf key per name would cost a key generation per name and protect nothing,
// since all of them live in this process), minting, and a bounded LRU cache
// of minted leaves by name.
//
// A leaf is for exactly one name: subject CN = the name (omitted when longer
// than 64 characters, the X.520 bound; the SAN is then critical, RFC 5280
// section 4.2.1.6), a SAN holding only that DNS name (an iPAddress when the
// name is an IPv4 or IPv6 literal), EKU serverAuth, keyUsage critical
// digitalSignature, basicConstraints critical CA:FALSE, SKI, and an AKI with
// the CA's key identifier (Python 3.13's default strict verification refuses
// a leaf without one). Its serial is 128 random bits; it is valid from
// now - backdate (guests' clocks lag) to now + validity, never past the CA's
// own notAfter. Signed with ECDSA SHA-256.
//
// mint() accepts exactly the names classify_server_name (client_hello.hpp)
// reports as kHostName or kIpLiteral, in any case: letters, digits, '-', '_'
// and '.', or an IP literal. Anything else (wildcards, commas, trailing dots)
// is refused, so a hostile SNI cannot ask for a certificate that covers more
// than the one name.
//
// Threads: mint() may be called from any thread (a mutex guards the cache and
// the counters; the signing itself runs outside it). Minting signs with
// ECDSA, ~0.1-1 ms: it must run on a worker thread, never on the event loop.
// A cached leaf is minted again once half its validity has passed, so a
// long-lived daemon never hands out one close to expiry.
//
// Rotation: set_authority(new CA) drops the cache; a mint that raced with it
// returns a leaf of the CA it started with but does not cache it.
//
// Deliberately not done: wildcard leaves, name constraints, OCSP stapling,
// persisting leaves across restarts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/net/tls/certificate_authority.hpp"
#include "daemon/net/tls/openssl_handles.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::tls {

// A minted leaf and the CA that signed it (the chain to send with it).
struct LeafCertificate {
  std::string name;
  UniqueX509 certificate;
  std::shared_ptr<const CertificateAuthority> authority;
  std::chrono::system_clock::time_point minted_at;

  // Non-const only because OpenSSL's calls take X509*; do not modify.
  X509* x509() const { return certificate.get(); }
};

struct LeafMinterOptions {
  std::size_t cache_capacity = 1024;  // 0: no caching
  std::chrono::seconds validity = std::chrono::hours(24 * 7);
  std::chrono::seconds backdate = std::chrono::hours(1);
};

struct LeafMinterCounters {
  std::uint64_t mints = 0;
  std::uint64_t cache_hits = 0;
};

class LeafMinter {
 public:
  using Options = LeafMinterOptions;

  // Throws std::runtime_error if OpenSSL cannot generate the key (start-up).
  explicit LeafMinter(std::shared_ptr<const CertificateAuthority> authority, Options options = {});

  LeafMinter(const LeafMinter&) = delete;
  LeafMinter& operator=(const LeafMinter&) = delete;

  // The leaf for `name`, from the cache or newly minted. Blocking: worker
  // threads only.
  Expected<std::shared_ptr<const LeafCertificate>, std::string> mint(std::string_view name);

  // After the CA has rotated: later mints use `authority`, the cache is dropped.
  void set_authority(std::shared_ptr<const CertificateAuthority> authority);
  std::shared_ptr<const CertificateAuthority> authority() const;

  // The key of every leaf. Non-const for OpenSSL's calls; do not modify.
  EVP_PKEY* key() const { return key_.get(); }

  LeafMinterCounters counters() const;
  std::size_t cached() const;

 private:
  struct Entry {
    std::string name;
    std::shared_ptr<const LeafCertificate> leaf;
  };

  Expected<std::shared_ptr<const LeafCertificate>, std::string> mint_uncached(
      const std::string& name, bool ip, const std::shared_ptr<const CertificateAuthority>& authority) const;

  const Options options_;
  const UniqueEvpPkey key_;

  mutable std::mutex mutex_;
  std::shared_ptr<const CertificateAuthority> authority_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> by_name_;
  LeafMinterCounters counters_;
};

}  // namespace sandboxd::net::tls
