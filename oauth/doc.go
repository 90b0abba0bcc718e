// Package oauth is the protocol: fosite composition, the token endpoint,
// discovery and JWKS, client authentication, and the adapters that connect
// fosite to our storage (fositestore.go) and keys (signer.go).
//
// fosite is imported only here. Storage and key errors are translated at this
// boundary: a database outage answers 503 temporarily_unavailable, never
// invalid_client (fosite's default for any GetClient failure).
//
// Importers: cmd/oauthd. oauth imports storage, keys and internal/httpx.
package oauth
