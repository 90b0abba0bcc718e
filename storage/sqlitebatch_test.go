package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// openBatchStore opens a SQLite store with one table kv, for the grouped
// writes' own tests.
func openBatchStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{DSN: "sqlite://" + filepath.Join(t.TempDir(), "batch.db")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.sqlDB.ExecContext(t.Context(), "CREATE TABLE kv (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return s
}

func keys(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.sqlDB.QueryContext(t.Context(), "SELECT k FROM kv ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

func insertKey(k string) func(ctx context.Context, tx *sql.Tx) (bool, error) {
	return func(ctx context.Context, tx *sql.Tx) (bool, error) {
		_, err := tx.ExecContext(ctx, "INSERT INTO kv (k) VALUES (?)", k)
		return err == nil, err
	}
}

// TestSQLiteWritesShareATransactionYetStayApart: writes queued while the
// writer is busy commit together, and one that fails or does not apply
// leaves no trace and does not disturb the others.
func TestSQLiteWritesShareATransactionYetStayApart(t *testing.T) {
	s := openBatchStore(t)
	var mu sync.Mutex
	var sizes []int
	s.batch.observe = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }

	boom := errors.New("boom")
	writes := map[string]func(ctx context.Context, tx *sql.Tx) (bool, error){
		"ok-1": insertKey("ok-1"),
		"ok-2": insertKey("ok-2"),
		"not applied": func(ctx context.Context, tx *sql.Tx) (bool, error) {
			_, err := tx.Exec("INSERT INTO kv (k) VALUES ('undone-1')")
			return false, err
		},
		"fails after writing": func(ctx context.Context, tx *sql.Tx) (bool, error) {
			if _, err := tx.Exec("INSERT INTO kv (k) VALUES ('undone-2')"); err != nil {
				return false, err
			}
			return true, boom
		},
		"constraint": insertKey("first"), // taken by the first write
	}

	// The first write holds the writer until the others are queued.
	release, holding := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		_, err := s.sqliteWrite(t.Context(), func(ctx context.Context, tx *sql.Tx) (bool, error) {
			close(holding)
			<-release
			return insertKey("first")(ctx, tx)
		})
		firstDone <- err
	}()
	<-holding
	type outcome struct {
		applied bool
		err     error
	}
	var wg sync.WaitGroup
	results := make(map[string]outcome)
	for name, fn := range writes {
		wg.Go(func() {
			applied, err := s.sqliteWrite(t.Context(), fn)
			mu.Lock()
			results[name] = outcome{applied, err}
			mu.Unlock()
		})
	}
	// A caller that goes away once its write is queued: the write still
	// happens (it runs under the batch's context), and does not disturb
	// the others.
	goneCtx, gone := context.WithCancel(t.Context())
	wg.Go(func() {
		applied, err := s.sqliteWrite(goneCtx, insertKey("caller-gone"))
		mu.Lock()
		results["caller gone"] = outcome{applied, err}
		mu.Unlock()
	})
	deadline := time.Now().Add(5 * time.Second)
	for len(s.batch.jobs) < len(writes)+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes queued", len(s.batch.jobs), len(writes)+1)
		}
		time.Sleep(time.Millisecond)
	}
	gone()
	close(release)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatalf("first write: %v", err)
	}

	for name, want := range map[string]outcome{
		"ok-1":                {applied: true},
		"caller gone":         {applied: true},
		"ok-2":                {applied: true},
		"not applied":         {},
		"fails after writing": {err: boom},
	} {
		got := results[name]
		if got.applied != want.applied || !errors.Is(got.err, want.err) {
			t.Errorf("%s: applied %v, err %v; want %v, %v", name, got.applied, got.err, want.applied, want.err)
		}
	}
	if got := results["constraint"]; got.applied || got.err == nil {
		t.Errorf("constraint: applied %v, err %v; want the driver's error", got.applied, got.err)
	}
	if got, want := keys(t, s), []string{"caller-gone", "first", "ok-1", "ok-2"}; !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sizes, []int{1, len(writes) + 1}) {
		t.Errorf("batch sizes %v, want [1 %d]", sizes, len(writes)+1)
	}
}

// TestSQLiteWritesConcurrent: many writers at once, each applied once.
func TestSQLiteWritesConcurrent(t *testing.T) {
	s := openBatchStore(t)
	const n = 300
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			applied, err := s.sqliteWrite(t.Context(), insertKey(fmt.Sprintf("k-%03d", i)))
			if err == nil && !applied {
				err = errors.New("not applied")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if got := len(keys(t, s)); got != n {
		t.Errorf("%d rows, want %d", got, n)
	}
}

// TestSQLiteWriteAfterClose: a closed store refuses writes at once.
func TestSQLiteWriteAfterClose(t *testing.T) {
	for _, used := range []bool{false, true} {
		s := openBatchStore(t)
		if used {
			if _, err := s.sqliteWrite(t.Context(), insertKey("before")); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		applied, err := s.sqliteWrite(ctx, insertKey("after"))
		cancel()
		if applied || !errors.Is(err, errStoreClosed) {
			t.Errorf("write after Close (store used before: %v): applied %v, err %v; want errStoreClosed", used, applied, err)
		}
	}
}
