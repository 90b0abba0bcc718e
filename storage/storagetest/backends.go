// Package storagetest gives tests real databases: SQLite always, and
// PostgreSQL when OAUTHD_TEST_POSTGRES_DSN names a server. Every test gets
// its own database (a file, or a throwaway schema dropped at the end), so
// tests never see each other's rows.
//
// With OAUTHD_TEST_REQUIRE_POSTGRES=1 (set by scripts/test.sh and CI) a
// missing PostgreSQL fails the test instead of skipping it, so a broken CI
// setup cannot silently test SQLite alone.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for schema set-up

	"github.com/oauthd/oauthd/storage"
)

// Backend is one database engine tests run against.
type Backend struct {
	Name string
	// NewDSN returns the DSN of a fresh, empty database for this test and
	// removes it when the test ends.
	NewDSN func(t testing.TB) string
}

// Open returns a migrated store on a fresh database of this backend.
func (b Backend) Open(t testing.TB) *storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Config{DSN: b.NewDSN(t)}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open %s: %v", b.Name, err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.MigrateUp(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", b.Name, err)
	}
	return st
}

// Backends returns SQLite and, when configured, PostgreSQL.
func Backends(t testing.TB) []Backend {
	t.Helper()
	bs := []Backend{{Name: "sqlite", NewDSN: newSQLiteDSN}}
	dsn := os.Getenv("OAUTHD_TEST_POSTGRES_DSN")
	switch {
	case dsn != "":
		bs = append(bs, Backend{Name: "postgres", NewDSN: func(t testing.TB) string { return newPostgresDSN(t, dsn) }})
	case os.Getenv("OAUTHD_TEST_REQUIRE_POSTGRES") == "1":
		t.Fatal("OAUTHD_TEST_REQUIRE_POSTGRES=1 but OAUTHD_TEST_POSTGRES_DSN is not set; run the tests through scripts/test.sh")
	default:
		t.Log("PostgreSQL not configured (OAUTHD_TEST_POSTGRES_DSN): testing SQLite only")
	}
	return bs
}

func newSQLiteDSN(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "oauthd.db")
}

// newPostgresDSN creates schema t_<random> and returns base with its
// search_path pointing there; the schema is dropped when the test ends.
func newPostgresDSN(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Logf("postgres: drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("postgres DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
