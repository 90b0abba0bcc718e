// Package oauth is the protocol: fosite composition, the authorization
// endpoint with its consent step, the token endpoint (client credentials,
// authorization code with PKCE, our rotating refresh-token grant), PAR,
// revocation, introspection, userinfo, RP-initiated logout, discovery and
// JWKS, and the adapters that connect fosite to our storage
// (fositestore.go, fositestore_grants.go) and keys (signer.go).
//
// fosite is imported only here. Storage and key errors are translated at this
// boundary: a database outage answers 503 temporarily_unavailable, never
// invalid_client or active:false. The pages people see come from a Browser
// (browser.go), implemented by package web; the two never import each other.
//
// Importers: cmd/oauthd. oauth imports storage, keys, internal/httpx and
// internal/secret.
package oauth
