// Package keys owns oauthd's signing keys: generation, encryption at rest,
// scheduled and on-demand rotation, signing, verification by kid, and the
// prepared JWKS document.
//
// go-jose is used only here; other packages see kids, algorithm names, bytes
// and standard library key types.
//
// The model (see docs/keys.md):
//   - every key has an algorithm and an activation time; for each configured
//     algorithm the key that signs is the one with the latest activation time
//     in the past, so processes sharing a database agree without talking;
//   - a new key is published in the JWKS PrePublish before it activates, so
//     verifiers' JWKS caches know it before the first token it signs;
//   - when a successor is scheduled, the old key gets a retirement time (the
//     successor's activation plus RetireAfter, which covers the longest
//     token lifetime and clock leeway): it stays in the
//     JWKS until then and is deleted afterwards;
//   - changes to the key set go through storage.UpdateSigningKeys, which
//     serialises processes, so two processes never both rotate.
//
// Importers: cmd/oauthd, oauth, admin. keys imports storage and internal/secret.
package keys
