#include <catch2/catch.hpp>

#include <string>

#include <openssl/err.h>

#include "daemon/net/tls/client_hello.hpp"
#include "daemon/net/tls/leaf_minter.hpp"
#include "daemon/net/tls/server_context.hpp"
#include "tls_test_support.hpp"

using namespace sandboxd;
using namespace sandboxd::net::tls;
using namespace sandboxd::net::tls::test;

namespace {

struct Handshake {
  bool done = false;
  long verify_result = -1;
  int version = 0;
};

// A client that trusts only `ca` and checks `host`, against `server_ctx`,
// over a BIO pair; pumps both sides until both finish or one fails.
Handshake handshake(SSL_CTX* server_ctx, X509* ca, const std::string& host) {
  UniqueSslCtx client_ctx(SSL_CTX_new(TLS_client_method()));
  X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx.get()), ca);
  SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_PEER, nullptr);
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(client_ctx.get()), X509_V_FLAG_X509_STRICT);
  UniqueSsl client(SSL_new(client_ctx.get()));
  UniqueSsl server(SSL_new(server_ctx));
  BIO* client_end = nullptr;
  BIO* server_end = nullptr;
  BIO_new_bio_pair(&client_end, 0, &server_end, 0);
  SSL_set_bio(client.get(), client_end, client_end);
  SSL_set_bio(server.get(), server_end, server_end);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  SSL_set1_host(client.get(), host.c_str());
  SSL_ctrl(client.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str()));

  Handshake out;
  bool client_done = false;
  bool server_done = false;
  for (int i = 0; i < 50 && !(client_done && server_done); ++i) {
    if (!client_done) {
      const int rc = SSL_do_handshake(client.get());
      if (rc == 1)
        client_done = true;
      else if (SSL_get_error(client.get(), rc) != SSL_ERROR_WANT_READ)
        break;
    }
    if (!server_done) {
      const int rc = SSL_do_handshake(server.get());
      if (rc == 1)
        server_done = true;
      else if (SSL_get_error(server.get(), rc) != SSL_ERROR_WANT_READ)
        break;
    }
  }
  ERR_clear_error();
  out.verify_result = SSL_get_verify_result(client.get());
  out.version = SSL_version(client.get());
  if (client_done && server_done) {
    const std::string ping = "ping";
    std::string got(4, '\0');
    out.done =
        SSL_write(client.get(), ping.data(), 4) == 4 && SSL_read(server.get(), got.data(), 4) == 4 && got == ping;
  }
  return out;
}

}  // namespace

TEST_CASE("server context: a client trusting the CA completes a handshake with the minted leaf") {
  auto made = CertificateAuthority::create_ephemeral();
  REQUIRE(made.has_value());
  auto ca = std::make_shared<const CertificateAuthority>(std::move(*made));
  LeafMinter minter(ca);
  auto leaf = minter.mint("api.example.com");
  REQUIRE(leaf.has_value());
  auto ctx = make_server_context(**leaf, minter.key());
  REQUIRE(ctx.has_value());

  const Handshake ok = handshake(ctx->get(), ca->certificate(), "api.example.com");
  CHECK(ok.done);
  CHECK(ok.verify_result == X509_V_OK);
  CHECK(ok.version == TLS1_3_VERSION);

  const Handshake wrong = handshake(ctx->get(), ca->certificate(), "other.example.com");
  CHECK_FALSE(wrong.done);
  CHECK(wrong.verify_result == X509_V_ERR_HOSTNAME_MISMATCH);

  auto stranger = CertificateAuthority::create_ephemeral();
  REQUIRE(stranger.has_value());
  const Handshake untrusted = handshake(ctx->get(), stranger->certificate(), "api.example.com");
  CHECK_FALSE(untrusted.done);
  CHECK(untrusted.verify_result != X509_V_OK);
}
