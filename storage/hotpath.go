package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// The hot paths (refresh, code exchange and issue, introspection, the
// browser-session check) use database/sql directly with prepared
// statements: the ORM's statement building and reflection cost as much as
// the database's own work for these one-row statements, and SQLite parses
// every statement it is not handed prepared. SQL shared by both databases
// uses $n placeholders, which both take; SQLite-only statements use ?n.

// prepared returns the statement for query, prepared once for the whole
// pool (database/sql prepares it again on each connection as needed).
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.sqlDB.PrepareContext(ctx, query)
	if err != nil {
		return nil, translate("prepare", err)
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// sqlTime scans a time column read with database/sql: PostgreSQL's driver
// gives a time.Time; SQLite's may give the stored text.
type sqlTime struct{ Time time.Time }

func (t *sqlTime) Scan(v any) error {
	switch v := v.(type) {
	case time.Time:
		t.Time = v.UTC()
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	case nil:
		t.Time = time.Time{}
		return nil
	}
	return fmt.Errorf("storage: cannot scan %T into a time", v)
}

func (t *sqlTime) parse(s string) error {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("storage: cannot parse time %q", s)
}

// execWrite runs one prepared write statement: on SQLite with the other
// writes waiting (sqliteWrite), on PostgreSQL as its own transaction.
// Inside a caller's transaction (WithTx) it is run there, on the
// transaction's connection.
func (s *Store) execWrite(ctx context.Context, query string, args ...any) error {
	if tx, inTx := ctx.Value(txKey{}).(*gorm.DB); inTx {
		_, err := tx.Statement.ConnPool.ExecContext(ctx, query, args...)
		return err
	}
	stmt, err := s.prepared(ctx, query)
	if err != nil {
		return err
	}
	if s.dialect == SQLite {
		_, err := s.sqliteWrite(ctx, func(ctx context.Context, tx *sql.Tx) (bool, error) {
			_, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
			return err == nil, err
		})
		return err
	}
	_, err = stmt.ExecContext(ctx, args...)
	return err
}

// inTx reports whether ctx carries a caller's transaction (WithTx).
func inTx(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(*gorm.DB)
	return ok
}
