package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oauthd/oauthd/storage"
)

type codedErr int

func (e codedErr) Error() string { return fmt.Sprintf("sqlite error (%d)", int(e)) }
func (e codedErr) Code() int     { return int(e) }

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{fmt.Errorf("storage: x: %w: %w", storage.ErrUnavailable, &pgconn.PgError{Code: "40001"}), true},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "57014"}, false}, // query canceled
		{codedErr(5), true},                     // SQLITE_BUSY
		{codedErr(517), true},                   // SQLITE_BUSY_SNAPSHOT
		{codedErr(6), true},                     // SQLITE_LOCKED
		{codedErr(2067), false},                 // SQLITE_CONSTRAINT_UNIQUE
		{codedErr(19), false},
		{errors.New("database is locked (5) (SQLITE_BUSY)"), true},
		{storage.ErrNotFound, false},
		{context.Canceled, false},
	}
	for _, tc := range tests {
		if got := storage.IsRetryable(tc.err); got != tc.want {
			t.Errorf("isRetryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestRotateRetriesBusySQLite: a rotation that finds the SQLite database
// locked by another writer (beyond busy_timeout) is retried and succeeds
// once the lock is released, and fails with ErrUnavailable, promptly, when
// the lock is held for longer than its retries last.
func TestRotateRetriesBusySQLite(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "oauthd.db")
	s, err := storage.Open(t.Context(), storage.Config{DSN: dsn, BusyTimeout: time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.MigrateUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"released", "held"} {
		if err := s.CreateGrantSession(t.Context(), &storage.GrantSession{ID: id, UserID: "u", ClientID: "c", AuthTime: now, CreatedAt: now,
			IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRefreshToken(t.Context(), &storage.RefreshToken{Signature: id + "/0", SessionID: id, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	// lock takes the database write lock on a connection of its own and
	// releases it after hold.
	lock := func(hold time.Duration) {
		t.Helper()
		conn, err := s.SQLDB().Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(hold, func() {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
		})
	}
	rotate := func(parent string) (storage.RotateResult, time.Duration, error) {
		var calls atomic.Int32
		began := time.Now()
		res, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{
			ParentSignature: parent, Now: now.Add(time.Minute), ReuseWindow: time.Second, IdleTTL: time.Hour,
			NewChild: func() (storage.RefreshToken, []byte, error) {
				calls.Add(1)
				return storage.RefreshToken{Signature: parent + "-child", ExpiresAt: now.Add(time.Hour)}, []byte("sealed"), nil
			},
		})
		if n := calls.Load(); n > 1 {
			t.Errorf("NewChild called %d times", n)
		}
		return res, time.Since(began), err
	}

	// Retries wait at least 77 ms in all: a lock held for 20 ms is outlasted.
	lock(20 * time.Millisecond)
	res, took, err := rotate("released/0")
	if err != nil || res.Outcome != storage.RotateRotated {
		t.Errorf("rotation behind a briefly held lock: %+v, %v (after %s); want rotated", res, err, took)
	}

	lock(2 * time.Second)
	res, took, err = rotate("held/0")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("rotation behind a held lock: %+v, %v; want ErrUnavailable", res, err)
	}
	if took > time.Second {
		t.Errorf("giving up took %s, want well under the lock's 2s", took)
	}
	t.Logf("gave up after %s: %v", took, err)
}
