package storage

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Store is the one implementation of oauthd's persistence. It is safe for
// concurrent use.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect Dialect
	logger  *slog.Logger
	now     func() time.Time
	// writer admits one write transaction at a time on SQLite (nil on
	// PostgreSQL). SQLite has one writer anyway; queueing in Go instead of
	// in SQLite's busy handler, which polls with sleeps of up to 100 ms,
	// keeps contended transactions (refresh rotations) fast and fair.
	writer chan struct{}
	// stmts holds the hot paths' prepared statements by query text
	// (see prepared).
	stmts sync.Map
	// batch groups SQLite's hot writes into shared transactions
	// (sqliteWrite).
	batch batcher
	// status and codes group PostgreSQL's hottest reads into shared
	// statements (AccessTokenStatus, GetAuthorizationCode); nil on SQLite.
	status *stmtGroup[statusQuestion, statusAnswer]
	codes  *stmtGroup[string, *AuthorizationCode]
	// rotations and redemptions group PostgreSQL's hottest writes the same
	// way (RotateRefreshToken's common case, RedeemAuthorizationCode);
	// nil on SQLite.
	rotations   *stmtGroup[rotateQuestion, rotateAnswer]
	redemptions *stmtGroup[redeemQuestion, bool]
	// groupDB is the grouped statements' own pool (see grouped.go); nil
	// on SQLite.
	groupDB *sql.DB
}

// Open connects to the database named by cfg.DSN and checks that it answers.
// It does not migrate: call Migrate. For SQLite the parent directory of the
// file is created when missing.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	dialect, driverDSN, err := ParseDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	gcfg := &gorm.Config{
		Logger:                 logger.Discard, // errors are returned, and logged once at the HTTP boundary
		SkipDefaultTransaction: true,           // single statements need no implicit transaction
		// SQLite parses every statement it is not given prepared, and
		// its driver keeps prepared statements; PostgreSQL's driver (pgx)
		// already caches prepared statements per connection by itself.
		PrepareStmt: dialect == SQLite,
		NowFunc:     func() time.Time { return time.Now().UTC() },
	}
	var dial gorm.Dialector
	switch dialect {
	case SQLite:
		if dir := filepath.Dir(driverDSN); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create directory for SQLite database %s: %w", driverDSN, err)
			}
		}
		busy := cfg.BusyTimeout
		if busy <= 0 {
			busy = 5 * time.Second
		}
		// WAL lets readers run beside the one writer; busy_timeout makes a
		// writer wait instead of failing; _txlock=immediate takes the write
		// lock at BEGIN so two transactions never deadlock upgrading a read lock.
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		// Temporary files (the savepoint journals of grouped writes, see
		// sqlitebatch.go) stay in memory instead of going to disk.
		q.Add("_pragma", "temp_store(MEMORY)")
		// Checkpoints run beside the writers (sqlitecheckpoint.go).
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Set("_txlock", "immediate")
		// Times are written as text in one fixed format
		// ("2006-01-02 15:04:05.999999999-07:00", always UTC here), so
		// that SQL comparisons of times compare the instants.
		q.Set("_time_format", "sqlite")
		dial = sqlite.Open("file:" + driverDSN + "?" + q.Encode())
	case Postgres:
		dial = postgres.New(postgres.Config{DSN: driverDSN})
	}
	db, err := gorm.Open(dial, gcfg)
	if err != nil {
		return nil, &openError{host: Host(cfg.DSN), cause: err}
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, &openError{host: Host(cfg.DSN), cause: err}
	}
	maxOpen := cfg.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = defaultPoolSize(dialect, runtime.GOMAXPROCS(0))
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxOpen)
	lifetime := cfg.ConnMaxLifetime
	if lifetime <= 0 {
		lifetime = 30 * time.Minute
	}
	sqlDB.SetConnMaxLifetime(lifetime)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)

	s := &Store{db: db, sqlDB: sqlDB, dialect: dialect, logger: log, now: func() time.Time { return time.Now().UTC() }}
	if dialect == SQLite {
		s.writer = make(chan struct{}, 1)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, &openError{host: Host(cfg.DSN), cause: err}
	}
	if dialect == SQLite {
		s.startWrites()
	} else {
		if s.groupDB, err = openGroupDB(driverDSN, lifetime); err != nil {
			_ = sqlDB.Close()
			return nil, &openError{host: Host(cfg.DSN), cause: err}
		}
		s.status = newStmtGroup("access token status", s.askStatuses)
		s.codes = newStmtGroup("get authorization code", s.askCodes)
		s.rotations = newStmtGroup("rotate refresh token", s.askRotations)
		s.redemptions = newStmtGroup("redeem authorization code", s.askRedemptions)
	}
	return s, nil
}

// defaultPoolSize is the connection pool of OAUTHD_DB_MAX_OPEN_CONNS=0.
// SQLite: 8 (one writer anyway). PostgreSQL: 4 per CPU this process may
// use, between 8 and 32: more statements in flight than the process can
// feed only make the database's processes contend (measured on 2 CPUs: 8
// connections did 10-20 % more refreshes and code exchanges than 32).
func defaultPoolSize(d Dialect, cpus int) int {
	if d == SQLite {
		return 8
	}
	return min(32, max(8, 4*cpus))
}

// openError reports a database that cannot be reached in one line that
// names where it is (never the password: driver messages do not carry it).
type openError struct {
	host  string
	cause error
}

func (e *openError) Error() string {
	// Drivers report one line per address tried; the last says enough.
	lines := strings.Split(strings.TrimSpace(e.cause.Error()), "\n")
	return "cannot reach the database at " + e.host + ": " + strings.TrimSpace(lines[len(lines)-1])
}

func (e *openError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// Dialect reports which SQL flavour this store speaks.
func (s *Store) Dialect() Dialect { return s.dialect }

// SQLDB exposes the pool for metrics (database/sql stats) and migrations.
func (s *Store) SQLDB() *sql.DB { return s.sqlDB }

// Ping checks that the database answers; /health/ready uses it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return translate("ping", err)
	}
	return nil
}

// Close releases the pool.
func (s *Store) Close() error {
	s.stopWrites()
	s.status.close()
	s.codes.close()
	s.rotations.close()
	s.redemptions.close()
	if s.groupDB != nil {
		_ = s.groupDB.Close()
	}
	s.stmts.Range(func(_, st any) bool {
		_ = st.(*sql.Stmt).Close()
		return true
	})
	return s.sqlDB.Close()
}

// SetClock replaces the store's clock (tests). Its times are used in UTC,
// like every time the store writes (see utc).
func (s *Store) SetClock(now func() time.Time) { s.now = func() time.Time { return now().UTC() } }

// utc returns t in UTC, or nil. Every time is written in UTC: SQLite stores
// times as text with the zone offset and compares and orders that text, so
// mixed offsets would sort and compare wrongly.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

type txKey struct{}

// conn returns the transaction carried by ctx, or the pool.
func (s *Store) conn(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx.WithContext(ctx)
	}
	return s.db.WithContext(ctx)
}

// WithTx runs fn in one transaction carried by the context passed to fn; every
// Store method called with that context joins it. fn's error rolls back and
// is returned as it is; a failure of BEGIN or COMMIT is mapped like any
// driver error (ErrUnavailable when the database is away). A nested call
// joins the outer transaction.
func (s *Store) WithTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.tx(ctx, "transaction", fn)
}

// tx is WithTx with the operation named for error messages.
func (s *Store) tx(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return fn(ctx)
	}
	release, err := s.admitWriter(ctx)
	if err != nil {
		return translate(op, err)
	}
	defer release()
	var fnErr error
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		fnErr = fn(context.WithValue(ctx, txKey{}, tx))
		return fnErr
	})
	if err != nil && err != fnErr { //nolint:errorlint // identity: was it fn's own error?
		return translate(op, err)
	}
	return err
}

// writing runs autocommit write statements: on SQLite, outside a
// transaction, it waits for the writer's turn first, like a transaction
// (see Store.writer), so single writes do not poll in SQLite's busy handler
// either.
func (s *Store) writing(ctx context.Context, fn func(db *gorm.DB) error) error {
	if _, inTx := ctx.Value(txKey{}).(*gorm.DB); !inTx {
		release, err := s.admitWriter(ctx)
		if err != nil {
			return err
		}
		defer release()
	}
	return fn(s.conn(ctx))
}

// admitWriter waits for this process's turn to write (SQLite) and returns
// the function that ends it.
func (s *Store) admitWriter(ctx context.Context) (func(), error) {
	if s.writer == nil {
		return func() {}, nil
	}
	select {
	case s.writer <- struct{}{}:
		return func() { <-s.writer }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
