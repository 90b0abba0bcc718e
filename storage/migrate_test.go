package storage_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/libtnb/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/oauthd/oauthd/migrations"
	"github.com/oauthd/oauthd/storage"
	"github.com/oauthd/oauthd/storage/storagetest"
)

// openUnmigrated opens a store on dsn without migrating it.
func openUnmigrated(t *testing.T, dsn string) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), storage.Config{DSN: dsn}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sourceVersions lists the migration versions in migrations.FS for dialect,
// from the goose file names NNNNN_name.sql, in ascending order.
func sourceVersions(t *testing.T, d storage.Dialect) []int64 {
	t.Helper()
	names, err := fs.Glob(migrations.FS, string(d)+"/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no migrations for %s: %v", d, err)
	}
	var vs []int64
	for _, n := range names {
		base := n[strings.LastIndexByte(n, '/')+1:]
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil {
			t.Fatalf("migration %s is not named NNNNN_name.sql", n)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

type statusRow struct {
	Version int64
	Applied bool
}

func migrationStatus(t *testing.T, s *storage.Store) []statusRow {
	t.Helper()
	st, err := s.MigrationStatus(t.Context())
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	rows := make([]statusRow, 0, len(st))
	for _, m := range st {
		if m.Applied == m.AppliedAt.IsZero() {
			t.Errorf("migration %d: Applied=%v but AppliedAt=%v", m.Version, m.Applied, m.AppliedAt)
		}
		if !strings.HasSuffix(m.Name, ".sql") {
			t.Errorf("migration %d: Name %q does not name its file", m.Version, m.Name)
		}
		rows = append(rows, statusRow{m.Version, m.Applied})
	}
	return rows
}

func wantStatus(versions []int64, applied bool) []statusRow {
	rows := make([]statusRow, 0, len(versions))
	for _, v := range versions {
		rows = append(rows, statusRow{v, applied})
	}
	return rows
}

func pending(t *testing.T, s *storage.Store) bool {
	t.Helper()
	p, err := s.PendingMigrations(t.Context())
	if err != nil {
		t.Fatalf("PendingMigrations: %v", err)
	}
	return p
}

// gormOn wraps the store's pool in a GORM handle for Migrator() checks.
func gormOn(t *testing.T, s *storage.Store) *gorm.DB {
	t.Helper()
	var dial gorm.Dialector
	switch s.Dialect() {
	case storage.SQLite:
		dial = &sqlite.Dialector{Conn: s.SQLDB()}
	case storage.Postgres:
		dial = postgres.New(postgres.Config{Conn: s.SQLDB()})
	}
	db, err := gorm.Open(dial, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("gorm on the store's pool: %v", err)
	}
	return db.WithContext(t.Context())
}

// tables are the application tables the migrations create.
var tables = []string{
	"authorization_codes", "browser_sessions", "clients", "consents", "grant_sessions", "oidc_requests", "par_requests",
	"pkce_requests", "refresh_tokens", "revoked_access_tokens", "signing_keys", "used_jtis", "users",
}

func TestMigrateUpDownUp(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := openUnmigrated(t, b.NewDSN(t))
			versions := sourceVersions(t, s.Dialect())
			descending := slices.Clone(versions)
			slices.Reverse(descending)
			m := gormOn(t, s).Migrator()

			if diff := cmp.Diff(wantStatus(versions, false), migrationStatus(t, s)); diff != "" {
				t.Errorf("status of a fresh database (-want +got):\n%s", diff)
			}
			if !pending(t, s) {
				t.Error("PendingMigrations on a fresh database = false")
			}

			up := func(what string) {
				t.Helper()
				applied, err := s.MigrateUp(t.Context())
				if err != nil {
					t.Fatalf("%s: MigrateUp: %v", what, err)
				}
				if diff := cmp.Diff(versions, applied); diff != "" {
					t.Errorf("%s: MigrateUp applied (-want +got):\n%s", what, diff)
				}
				if diff := cmp.Diff(wantStatus(versions, true), migrationStatus(t, s)); diff != "" {
					t.Errorf("%s: status after MigrateUp (-want +got):\n%s", what, diff)
				}
				if pending(t, s) {
					t.Errorf("%s: PendingMigrations after MigrateUp = true", what)
				}
				for _, tbl := range tables {
					if !m.HasTable(tbl) {
						t.Errorf("%s: table %s missing after MigrateUp", what, tbl)
					}
				}
			}
			up("first")

			// Up again is a no-op.
			again, err := s.MigrateUp(t.Context())
			if err != nil || len(again) != 0 {
				t.Errorf("second MigrateUp = %v, %v; want nothing applied", again, err)
			}
			if diff := cmp.Diff(wantStatus(versions, true), migrationStatus(t, s)); diff != "" {
				t.Errorf("status after second MigrateUp (-want +got):\n%s", diff)
			}

			// A row to prove that down really drops the tables.
			if err := s.CreateClient(t.Context(), &storage.Client{ID: "c", TokenEndpointAuthMethod: "none"}); err != nil {
				t.Fatalf("CreateClient: %v", err)
			}

			// Down, one step at a time, until nothing is left.
			var down []int64
			for range len(versions) + 1 {
				v, err := s.MigrateDown(t.Context())
				if errors.Is(err, storage.ErrNotFound) {
					break
				}
				if err != nil {
					t.Fatalf("MigrateDown after %v: %v", down, err)
				}
				down = append(down, v)
			}
			if diff := cmp.Diff(descending, down); diff != "" {
				t.Errorf("MigrateDown rolled back (-want +got):\n%s", diff)
			}
			if _, err := s.MigrateDown(t.Context()); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("MigrateDown with nothing applied: %v, want ErrNotFound", err)
			}
			if diff := cmp.Diff(wantStatus(versions, false), migrationStatus(t, s)); diff != "" {
				t.Errorf("status after rolling everything back (-want +got):\n%s", diff)
			}
			if !pending(t, s) {
				t.Error("PendingMigrations after rolling everything back = false")
			}
			for _, tbl := range tables {
				if m.HasTable(tbl) {
					t.Errorf("table %s still exists after rolling everything back", tbl)
				}
			}

			// And up again, onto empty tables.
			up("after down")
			if _, err := s.GetClient(t.Context(), "c"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetClient of a client from before the roll-back: %v, want ErrNotFound", err)
			}
			if err := s.CreateClient(t.Context(), &storage.Client{ID: "c", TokenEndpointAuthMethod: "none"}); err != nil {
				t.Errorf("CreateClient after up-down-up: %v", err)
			}
		})
	}
}

// TestMigratedSchemaMatchesModels checks, after migrating, that every GORM
// model's table has a column for each of the model's fields, and no column
// the model does not know (an unmapped NOT NULL column would break inserts).
func TestMigratedSchemaMatchesModels(t *testing.T) {
	models := []struct {
		model any
		// columns, for models whose type is not exported (used_jtis,
		// revoked_access_tokens):
		// spelled out here, and exercised by the JTI conformance cases.
		table   string
		columns []string
	}{
		{model: &storage.Client{}},
		{model: &storage.SigningKey{}},
		{model: &storage.User{}},
		{model: &storage.GrantSession{}},
		{model: &storage.RefreshToken{}},
		{table: "used_jtis", columns: []string{"jti", "expires_at"}},
		{model: &storage.AuthorizationCode{}},
		{table: "pkce_requests", columns: []string{"signature", "request_data", "expires_at"}}, // no longer written
		{model: &storage.OIDCRequest{}},
		{model: &storage.PARRequest{}},
		{table: "revoked_access_tokens", columns: []string{"jti", "expires_at", "revoked_at"}},
		{model: &storage.BrowserSession{}},
		{model: &storage.Consent{}},
	}
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := gormOn(t, b.Open(t))
			m := db.Migrator()
			seen := map[string]bool{}
			for _, mod := range models {
				table, columns := mod.table, mod.columns
				var target any = table
				if mod.model != nil {
					stmt := &gorm.Statement{DB: db}
					if err := stmt.Parse(mod.model); err != nil {
						t.Fatalf("parse model %T: %v", mod.model, err)
					}
					table, columns, target = stmt.Schema.Table, stmt.Schema.DBNames, mod.model
				}
				seen[table] = true
				if !m.HasTable(target) {
					t.Errorf("table %s (model %T) missing", table, mod.model)
					continue
				}
				for _, c := range columns {
					if !m.HasColumn(target, c) {
						t.Errorf("table %s has no column %s", table, c)
					}
				}
				cts, err := m.ColumnTypes(target)
				if err != nil {
					t.Fatalf("column types of %s: %v", table, err)
				}
				var got []string
				for _, ct := range cts {
					got = append(got, ct.Name())
				}
				if diff := cmp.Diff(columns, got, cmpSorted); diff != "" {
					t.Errorf("columns of %s (-model +database):\n%s", table, diff)
				}
			}
			for _, tbl := range tables {
				if !seen[tbl] {
					t.Errorf("table %s has no model in this test", tbl)
				}
			}
		})
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
})

// TestConcurrentMigratePostgres: processes starting together on one empty
// PostgreSQL schema all migrate without error (goose's advisory lock makes
// them take turns), each version is applied exactly once, and the schema
// ends up current. SQLite has no such lock: it is a one-process database.
func TestConcurrentMigratePostgres(t *testing.T) {
	var pg *storagetest.Backend
	for _, b := range storagetest.Backends(t) {
		if b.Name == "postgres" {
			pg = &b
		}
	}
	if pg == nil {
		t.Skip("PostgreSQL not configured")
	}
	dsn := pg.NewDSN(t)
	const n = 3
	stores := make([]*storage.Store, n)
	for i := range stores {
		stores[i] = openUnmigrated(t, dsn)
	}
	versions := sourceVersions(t, storage.Postgres)
	// Create goose's version table first. Otherwise goose's retry of a
	// concurrent CREATE of that table (about a second) happens to space
	// the stores out, and the test would pass without the advisory lock.
	if !pending(t, stores[0]) {
		t.Fatal("PendingMigrations on an empty schema = false")
	}

	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		applied = make([][]int64, n)
		errs    = make([]error, n)
	)
	for i, s := range stores {
		wg.Go(func() {
			<-start
			applied[i], errs[i] = s.MigrateUp(context.WithoutCancel(t.Context()))
		})
	}
	close(start)
	wg.Wait()

	var all []int64
	for i := range n {
		if errs[i] != nil {
			t.Errorf("store %d: MigrateUp: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	slices.Sort(all)
	if diff := cmp.Diff(versions, all); diff != "" {
		t.Errorf("versions applied by all stores together (-want +got):\n%s", diff)
	}
	for i, s := range stores {
		if diff := cmp.Diff(wantStatus(versions, true), migrationStatus(t, s)); diff != "" {
			t.Errorf("store %d: status (-want +got):\n%s", i, diff)
		}
	}
	if err := stores[0].CreateClient(t.Context(), &storage.Client{ID: "c", TokenEndpointAuthMethod: "none"}); err != nil {
		t.Errorf("CreateClient on the migrated schema: %v", err)
	}
}
