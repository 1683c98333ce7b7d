// Shared by the TLS tests: ClientHellos written by OpenSSL's own client, a
// hand-built ClientHello for the cases OpenSSL will not write, edits of the
// record layer, temporary directories, and chain verification the way a
// strict client (Python 3.13's default context) does it.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/pem.h>

#include "daemon/net/tls/client_hello.hpp"
#include "daemon/net/tls/openssl_handles.hpp"
#include "protocol/bytes.hpp"

namespace sandboxd::net::tls::test {

struct HelloOptions {
  std::string sni;  // empty: no SNI
  std::vector<std::string> alpn;
  int max_version = 0;  // e.g. TLS1_2_VERSION; 0: OpenSSL's default (1.3)
};

// The first flight of an OpenSSL client: one record holding its ClientHello.
inline Bytes openssl_client_hello(const HelloOptions& options) {
  UniqueSslCtx ctx(SSL_CTX_new(TLS_client_method()));
  if (options.max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), options.max_version);
  UniqueSsl ssl(SSL_new(ctx.get()));
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);  // the SSL owns both now
  SSL_set_connect_state(ssl.get());
  if (!options.sni.empty()) {
    // SSL_set_tlsext_host_name is a macro with a C cast in it.
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(options.sni.c_str()));
  }
  if (!options.alpn.empty()) {
    std::string wire;
    for (const auto& p : options.alpn) wire += static_cast<char>(p.size()) + p;
    SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  }
  (void)SSL_do_handshake(ssl.get());  // wants to read the ServerHello
  const std::string bytes = bio_contents(out);
  const ByteSpan span = as_bytes(bytes);
  return Bytes(span.begin(), span.end());
}

inline void put_u16(Bytes& b, std::size_t at, std::size_t v) {
  b[at] = static_cast<std::byte>(v >> 8);
  b[at + 1] = static_cast<std::byte>(v);
}
inline void put_u24(Bytes& b, std::size_t at, std::size_t v) {
  b[at] = static_cast<std::byte>(v >> 16);
  put_u16(b, at + 1, v);
}
inline std::size_t get_u16(const Bytes& b, std::size_t at) {
  return (std::size_t{static_cast<std::uint8_t>(b[at])} << 8) | static_cast<std::uint8_t>(b[at + 1]);
}

// One extension: type, length, data.
inline Bytes extension(std::uint16_t type, const Bytes& data) {
  Bytes out;
  ByteWriter w(out);
  w.u16(type);
  w.u16(static_cast<std::uint16_t>(data.size()));
  w.bytes(data);
  return out;
}

inline Bytes sni_extension(std::string_view name) {
  Bytes data;
  ByteWriter w(data);
  w.u16(static_cast<std::uint16_t>(name.size() + 3));
  w.u8(0);
  w.u16(static_cast<std::uint16_t>(name.size()));
  w.bytes(as_bytes(name));
  return extension(kExtensionServerName, data);
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A minimal ClientHello in one record around the given extension block (raw,
// so a test can break it); `with_extensions = false` omits the block entirely.
inline Bytes handmade_client_hello(const Bytes& extension_block, bool with_extensions = true) {
  Bytes body;
  ByteWriter w(body);
  w.u16(0x0303);
  w.zeros(32);
  w.u8(0);   // no session id
  w.u16(2);  // one cipher suite
  w.u16(0x1301);
  w.u8(1);  // null compression
  w.u8(0);
  if (with_extensions) {
    w.u16(static_cast<std::uint16_t>(extension_block.size()));
    w.bytes(extension_block);
  }
  Bytes out;
  ByteWriter r(out);
  r.u8(22);
  r.u16(0x0301);
  r.u16(static_cast<std::uint16_t>(body.size() + 4));
  r.u8(1);
  r.u8(static_cast<std::uint8_t>(body.size() >> 16));
  r.u16(static_cast<std::uint16_t>(body.size()));
  r.bytes(body);
  return out;
}

// Where the extension block's length sits in a one-record ClientHello.
inline std::size_t extensions_offset(const Bytes& hello) {
  std::size_t at = 5 + 4 + 2 + 32;
  at += 1 + static_cast<std::uint8_t>(hello[at]);
  at += 2 + get_u16(hello, at);
  at += 1 + static_cast<std::uint8_t>(hello[at]);
  return at;
}

// Inserts `extra` (whole extensions) at the start of the extension block of
// a one-record ClientHello, fixing the three lengths around it.
inline Bytes inject_extensions(const Bytes& hello, const Bytes& extra) {
  const std::size_t at = extensions_offset(hello);
  Bytes out(hello.begin(), hello.begin() + static_cast<std::ptrdiff_t>(at + 2));
  out.insert(out.end(), extra.begin(), extra.end());
  out.insert(out.end(), hello.begin() + static_cast<std::ptrdiff_t>(at + 2), hello.end());
  put_u16(out, 3, get_u16(out, 3) + extra.size());
  put_u24(out, 6, get_u16(out, 3) - 4);
  put_u16(out, at, get_u16(out, at) + extra.size());
  return out;
}

// A one-record ClientHello re-framed as records of the given fragment sizes
// (the last takes what is left).
inline Bytes split_records(const Bytes& hello, const std::vector<std::size_t>& sizes) {
  const Bytes fragment(hello.begin() + 5, hello.end());
  Bytes out;
  std::size_t at = 0;
  for (std::size_t i = 0; i <= sizes.size() && at < fragment.size(); ++i) {
    const std::size_t n = i < sizes.size() ? sizes[i] : fragment.size() - at;
    out.push_back(std::byte{22});
    out.push_back(std::byte{3});
    out.push_back(std::byte{1});
    out.push_back(std::byte{0});
    out.push_back(std::byte{0});
    put_u16(out, out.size() - 2, n);
    out.insert(out.end(), fragment.begin() + static_cast<std::ptrdiff_t>(at),
               fragment.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
  }
  return out;
}

// A directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sandboxd-tls-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// X509_V_OK, or why `leaf` does not verify for `host` (or `ip`) against `ca`
// alone, with X509_V_FLAG_X509_STRICT as Python 3.13 sets it.
inline int verify_leaf(X509* leaf, X509* ca, const std::string& host, bool ip = false) {
  UniqueX509Store store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca);
  UniqueX509StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  if (ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  }
  const int rc = X509_verify_cert(ctx.get());
  return rc == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx.get());
}

inline std::string pem_of_key(EVP_PKEY* key) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_contents(bio.get());
}

inline std::string pem_of_certificate(X509* cert) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return bio_contents(bio.get());
}

}  // namespace sandboxd::net::tls::test
