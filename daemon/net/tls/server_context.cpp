#include "daemon/net/tls/server_context.hpp"

namespace sandboxd::net::tls {

Expected<UniqueSslCtx, std::string> make_server_context(const LeafCertificate& leaf, EVP_PKEY* key) {
  UniqueSslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Unexpected{openssl_error("creating a TLS server context")};
  // SSL_CTX_add1_chain_cert is a macro with a C cast in it; this is what it
  // expands to (the context takes its own reference to the CA certificate).
  const bool ok = SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) == 1 &&
                  SSL_CTX_use_certificate(ctx.get(), leaf.x509()) == 1 && SSL_CTX_use_PrivateKey(ctx.get(), key) == 1 &&
                  SSL_CTX_ctrl(ctx.get(), SSL_CTRL_CHAIN_CERT, 1, leaf.authority->certificate()) == 1 &&
                  SSL_CTX_check_private_key(ctx.get()) == 1;
  if (!ok) return Unexpected{openssl_error(("preparing the TLS server context for " + leaf.name).c_str())};
  // Renegotiation is an attack surface an interceptor has no use for.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  return ctx;
}

}  // namespace sandboxd::net::tls
