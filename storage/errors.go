package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a record with the same key exists, or a conditional update
	// lost a race.
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable: the database could not answer (down, timed out, pool
	// exhausted). Protocol endpoints turn it into 503 temporarily_unavailable.
	ErrUnavailable = errors.New("storage: database unavailable")
)

// translate maps a driver or GORM error to one of the sentinels above, keeping
// the original in the chain for logs. op names the operation for the message.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrUnavailable):
		return fmt.Errorf("storage: %s: %w", op, err)
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("storage: %s: %w", op, ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("storage: %s: %w", op, ErrConflict)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("storage: %s: %w", op, err)
	}
	return fmt.Errorf("storage: %s: %w: %w", op, ErrUnavailable, err)
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	// The SQLite driver reports constraint failures only through its message
	// ("constraint failed: UNIQUE constraint failed: ... (2067)").
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") ||
		strings.Contains(msg, "PRIMARY KEY constraint failed") ||
		strings.Contains(msg, "(1555)") || strings.Contains(msg, "(2067)")
}

// isRetryable reports whether err means that a transaction lost a race with
// another one and may succeed when run again from the start: on PostgreSQL a
// serialization failure (40001) or a deadlock (40P01), on SQLite a busy or
// locked database (the write lock was not granted within busy_timeout).
func isRetryable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	// The SQLite driver's *Error has Code() with the extended result code;
	// the primary code is its low byte: 5 SQLITE_BUSY, 6 SQLITE_LOCKED.
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 5, 6:
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "(SQLITE_BUSY)")
}
