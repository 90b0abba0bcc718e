package storage_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthd/oauthd/storage"
	"github.com/oauthd/oauthd/storage/storagetest"
)

func TestStore(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { storagetest.Run(t, b.Open) })
	}
}

// secret is the password in the DSNs below; no output may contain it.
const secret = "hunter2"

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn        string
		dialect    storage.Dialect
		driverDSN  string
		errContain string // non-empty: an error mentioning this is expected
	}{
		{dsn: "sqlite:///var/lib/oauthd/oauthd.db", dialect: storage.SQLite, driverDSN: "/var/lib/oauthd/oauthd.db"},
		{dsn: "sqlite://oauthd.db", dialect: storage.SQLite, driverDSN: "oauthd.db"},
		{dsn: "sqlite://data/oauthd.db?mode=rwc", dialect: storage.SQLite, driverDSN: "data/oauthd.db"},
		{dsn: "postgres://oauthd:" + secret + "@db.internal:5432/oauthd?sslmode=verify-full", dialect: storage.Postgres,
			driverDSN: "postgres://oauthd:" + secret + "@db.internal:5432/oauthd?sslmode=verify-full"},
		{dsn: "postgresql://oauthd@db/oauthd", dialect: storage.Postgres, driverDSN: "postgresql://oauthd@db/oauthd"},
		{dsn: "postgres://oauthd@/oauthd?host=/var/run/postgresql", dialect: storage.Postgres, driverDSN: "postgres://oauthd@/oauthd?host=/var/run/postgresql"},
		{dsn: "postgres://oauthd@/oauthd?host=var/run", errContain: "names no host"},

		{dsn: "sqlite://", errContain: "sqlite://PATH"},
		{dsn: "sqlite://?cache=shared", errContain: "names no file"},
		{dsn: "postgres://oauthd:" + secret + "@/oauthd", errContain: "names no host"},
		{dsn: "postgres://oauthd:" + secret + "@db:port/oauthd", errContain: "not a valid URL"},
		{dsn: "postgres://oauthd:" + secret + "@db/%zz", errContain: "not a valid URL"},
		{dsn: "mysql://root:" + secret + "@db/oauthd", errContain: "want sqlite://PATH or postgres://"},
		{dsn: "host=db user=oauthd password=" + secret + " dbname=oauthd", errContain: "want sqlite://PATH or postgres://"},
		{dsn: "/var/lib/oauthd/oauthd.db", errContain: "want sqlite://PATH or postgres://"},
		{dsn: "", errContain: "want sqlite://PATH or postgres://"},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			d, driverDSN, err := storage.ParseDSN(tc.dsn)
			if tc.errContain != "" {
				if err == nil {
					t.Fatalf("ParseDSN = %q, %q; want an error", d, driverDSN)
				}
				if !strings.Contains(err.Error(), tc.errContain) {
					t.Errorf("error %q does not say %q", err, tc.errContain)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDSN: %v", err)
			}
			if d != tc.dialect || driverDSN != tc.driverDSN {
				t.Errorf("ParseDSN = %q, %q; want %q, %q", d, driverDSN, tc.dialect, tc.driverDSN)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		dsn  string
		keep []string // parts that must survive
	}{
		{"postgres://oauthd:" + secret + "@db.internal:5432/oauthd?sslmode=disable", []string{"postgres://oauthd:", "@db.internal:5432/oauthd", "sslmode=disable"}},
		{"postgresql://oauthd:" + secret + "@db/oauthd", []string{"postgresql://oauthd:", "@db/oauthd"}},
		{"postgres://oauthd:hunter2%40x%3A@db/oauthd", []string{"@db/oauthd"}}, // escaped password
		{"postgres://oauthd@db/oauthd?sslmode=require&password=" + secret, []string{"postgres://oauthd@db/oauthd", "sslmode=require"}},
		{"postgres://oauthd:" + secret + "@db:port/oauthd", nil}, // not a URL
		{"postgres://oauthd:" + secret + "@[::1/oauthd", nil},    // not a URL
		{"mysql://root:" + secret + "@db/oauthd", []string{"mysql://root:", "@db/oauthd"}},
		{"host=db user=oauthd password=" + secret + " dbname=oauthd", []string{"host=db", "dbname=oauthd"}},
		{"host=db password='" + secret + " x' dbname=oauthd", []string{"host=db", "dbname=oauthd"}},
		// Nothing to hide: unchanged.
		{"postgres://oauthd@db:5432/oauthd?sslmode=disable", []string{"postgres://oauthd@db:5432/oauthd?sslmode=disable"}},
		{"sqlite:///var/lib/oauthd/oauthd.db", []string{"sqlite:///var/lib/oauthd/oauthd.db"}},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			got := storage.Redact(tc.dsn)
			if strings.Contains(got, secret) || strings.Contains(got, "hunter2%40x") {
				t.Errorf("Redact(%q) = %q shows the password", tc.dsn, got)
			}
			for _, k := range tc.keep {
				if !strings.Contains(got, k) {
					t.Errorf("Redact(%q) = %q lost %q", tc.dsn, got, k)
				}
			}
		})
	}
}

func TestHost(t *testing.T) {
	abs, err := filepath.Abs(filepath.Join("rel", "oauthd.db"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dsn, want string
	}{
		{"postgres://oauthd:" + secret + "@db.internal:5432/oauthd", "db.internal:5432"},
		{"postgres://oauthd:" + secret + "@db.internal/oauthd?password=" + secret, "db.internal"},
		{"postgresql://oauthd@[2001:db8::1]:5433/oauthd", "[2001:db8::1]:5433"},
		{"sqlite:///var/lib/oauthd/oauthd.db", "/var/lib/oauthd/oauthd.db"},
		{"sqlite://rel/oauthd.db?mode=rwc", abs},
		{"postgres://oauthd:" + secret + "@/oauthd", "(invalid DSN)"},
		{"postgres://oauthd:" + secret + "@/oauthd?host=/var/run/postgresql&port=5433", "/var/run/postgresql"},
		{"host=db password=" + secret, "(invalid DSN)"},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			if got := storage.Host(tc.dsn); got != tc.want {
				t.Errorf("Host(%q) = %q, want %q", tc.dsn, got, tc.want)
			}
		})
	}
}

// TestGroupedStatementsUseIndexes: on a fresh database, whose tables are
// small enough that a plan would rather scan them whole, the grouped
// statements' pool still plans every table read through an index: the
// plan is kept for the life of the connection, while the tables grow.
func TestGroupedStatementsUseIndexes(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		if b.Name != "postgres" {
			continue
		}
		st := b.Open(t)
		plans, err := st.GroupedPlans(t.Context(), false)
		if err != nil {
			t.Fatal(err)
		}
		if len(plans) != 4 {
			t.Fatalf("%d plans, want 4", len(plans))
		}
		for name, plan := range plans {
			if strings.Contains(plan, "Seq Scan") {
				t.Errorf("%s: plan scans a table whole:\n%s", name, plan)
			}
			if !strings.Contains(plan, "Index") {
				t.Errorf("%s: plan uses no index:\n%s", name, plan)
			}
		}
		// The test can tell: an ordinary connection plans some of them
		// with a sequential scan on these small tables.
		ordinary, err := st.GroupedPlans(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		scans := 0
		for _, plan := range ordinary {
			if strings.Contains(plan, "Seq Scan") {
				scans++
			}
		}
		t.Logf("%d of %d grouped statements planned with a sequential scan on an ordinary connection", scans, len(ordinary))
	}
}
