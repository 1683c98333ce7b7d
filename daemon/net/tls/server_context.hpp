// The server side of an intercepted TLS flow: an SSL_CTX that presents a
// minted leaf (with the CA after it, so a client that trusts the CA can build
// the chain from what is sent) and speaks TLS 1.2 or 1.3.
//
// One context per leaf: a caller that intercepts many flows to one name keeps
// the context with the leaf (SSL_CTX is reference counted and may be shared
// between connections and threads once built).
//
// Deliberately not done: ALPN selection (the flow handler chooses once it
// knows what the upstream speaks, with SSL_CTX_set_alpn_select_cb), session
// tickets and resumption policy, client certificates.
#pragma once

#include <string>

#include "daemon/net/tls/leaf_minter.hpp"
#include "daemon/net/tls/openssl_handles.hpp"
#include "protocol/expected.hpp"

namespace sandboxd::net::tls {

// `key` is the minter's shared leaf key (LeafMinter::key()).
Expected<UniqueSslCtx, std::string> make_server_context(const LeafCertificate& leaf, EVP_PKEY* key);

}  // namespace sandboxd::net::tls
