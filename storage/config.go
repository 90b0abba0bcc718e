package storage

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Dialect is the SQL flavour behind a DSN.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config says where the database is and how to pool connections to it.
type Config struct {
	// DSN is sqlite://PATH (embedded) or postgres://... (a libpq URL).
	DSN string
	// MaxOpenConns bounds the pool. Zero means the dialect default: 32 for
	// PostgreSQL (enough that 32 concurrent token requests never wait on the
	// pool), 8 for SQLite (readers in WAL mode; writers serialise anyway).
	MaxOpenConns int
	// ConnMaxLifetime recycles connections so a failed-over or restarted
	// PostgreSQL does not leave dead connections in the pool.
	ConnMaxLifetime time.Duration
	// BusyTimeout is how long a SQLite writer waits for the write lock.
	BusyTimeout time.Duration
}

// ParseDSN splits a DSN into its dialect and the DSN for the driver.
func ParseDSN(dsn string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path := strings.TrimPrefix(dsn, "sqlite://")
		if q := strings.IndexByte(path, '?'); q >= 0 {
			path = path[:q]
		}
		if path == "" {
			return "", "", fmt.Errorf("sqlite DSN %q names no file (want sqlite://PATH)", dsn)
		}
		return SQLite, path, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("postgres DSN is not a valid URL: %s", Redact(dsn))
		}
		// A Unix socket is named by the host parameter (a directory):
		// postgres://user@/db?host=/var/run/postgresql.
		if u.Host == "" && !strings.HasPrefix(u.Query().Get("host"), "/") {
			return "", "", fmt.Errorf("postgres DSN %s names no host (or Unix-socket directory: ?host=/path)", Redact(dsn))
		}
		return Postgres, dsn, nil
	}
	return "", "", fmt.Errorf("DSN %q: want sqlite://PATH or postgres://...", Redact(dsn))
}

// kvPassword matches the password of a libpq keyword/value DSN
// ("password=secret" or "password='quoted secret'").
var kvPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// Redact returns a DSN that is safe to print: the password is removed, from
// the user info or a password= query parameter of a URL, or from a
// keyword/value DSN (which ParseDSN rejects, but whose error shows it).
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		if err != nil && strings.Contains(dsn, "@") {
			return "(unparseable DSN)"
		}
		return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			changed = true
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
		changed = true
	}
	if !changed {
		return dsn
	}
	return u.String()
}

// Host names where the database is, for error messages: the host and port
// of a PostgreSQL DSN, or the file of a SQLite one.
func Host(dsn string) string {
	d, driverDSN, err := ParseDSN(dsn)
	if err != nil {
		return "(invalid DSN)"
	}
	if d == SQLite {
		abs, err := filepath.Abs(driverDSN)
		if err != nil {
			return driverDSN
		}
		return abs
	}
	u, _ := url.Parse(driverDSN)
	if u.Host == "" {
		return u.Query().Get("host") // the socket directory
	}
	return u.Host
}
