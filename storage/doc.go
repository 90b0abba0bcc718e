// Package storage is oauthd's persistence layer: GORM over PostgreSQL (production,
// several processes) or an embedded pure-Go SQLite file (the one-command default).
//
// It knows SQL and nothing about HTTP, fosite or JOSE. Callers declare the small
// interfaces they need and receive *Store. Errors are mapped in one place
// (errors.go) to ErrNotFound, ErrConflict and ErrUnavailable so callers never look
// at driver errors. A transaction started with WithTx travels in the context and
// every method uses it when present.
//
// Importers: cmd/oauthd, oauth, keys, admin, accounts. storage imports only
// migrations.
package storage
