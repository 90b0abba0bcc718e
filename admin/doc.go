// Package admin is the operator's side of oauthd: client registration with
// RFC 7591 metadata validation (used by the admin API and the CLI alike) and
// the admin HTTP API served on the admin listener only.
//
// The admin API also lists and revokes users' grant sessions, straight
// through the store.
//
// Importers: cmd/oauthd. admin imports storage, accounts (user creation),
// keys (key listing and rotation), internal/httpx and internal/secret.
package admin
