package migrations_test

import (
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/oauthd/oauthd/migrations"
)

var gooseName = regexp.MustCompile(`^(\d+)_[a-z0-9_]+\.sql$`)

// versions reads dir of migrations.FS and returns its versions in order. It
// fails on a file that is not a goose migration NNNNN_name.sql with both an
// Up and a Down section, and on a version used twice.
func versions(t *testing.T, dir string) []int64 {
	t.Helper()
	entries, err := fs.ReadDir(migrations.FS, dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	seen := map[int64]string{}
	var vs []int64
	for _, e := range entries {
		m := gooseName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			t.Errorf("%s/%s is not a migration named NNNNN_name.sql", dir, e.Name())
			continue
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v <= 0 {
			t.Errorf("%s/%s: bad version %q", dir, e.Name(), m[1])
			continue
		}
		if other, dup := seen[v]; dup {
			t.Errorf("%s: version %d used by %s and %s", dir, v, other, e.Name())
		}
		seen[v] = e.Name()
		vs = append(vs, v)

		body, err := fs.ReadFile(migrations.FS, dir+"/"+e.Name())
		if err != nil {
			t.Fatalf("read %s/%s: %v", dir, e.Name(), err)
		}
		up := strings.Index(string(body), "-- +goose Up")
		down := strings.Index(string(body), "-- +goose Down")
		if up < 0 || down < up {
			t.Errorf("%s/%s: want a -- +goose Up section followed by a -- +goose Down section", dir, e.Name())
		}
	}
	slices.Sort(vs)
	return vs
}

func TestDialectsHaveSameVersions(t *testing.T) {
	pg, lite := versions(t, "postgres"), versions(t, "sqlite")
	if len(pg) == 0 {
		t.Fatal("no PostgreSQL migrations embedded")
	}
	if !slices.Equal(pg, lite) {
		t.Errorf("migration versions differ between dialects:\npostgres: %v\nsqlite:   %v", pg, lite)
	}
}
