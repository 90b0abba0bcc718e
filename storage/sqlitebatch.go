package storage

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// SQLite has one writer, so every write transaction waits for the one
// before it, and each commit costs the same system calls however little it
// wrote. The hot writes (a refresh rotation, a code exchange) are small and
// come many at a time under load: sqliteWrite hands them to one goroutine
// that runs whatever is waiting as one transaction ("group commit"), each
// write in its own savepoint, so one that fails or does not apply leaves
// the others as they were. A waiting write is in the next transaction; an
// idle server commits each write on its own, as before.

// maxBatch bounds the writes of one transaction, and so the wait of the
// first of them.
const maxBatch = 64

// batchJob is one write: fn reports whether it applied (false: whatever it
// did is undone, and it gets false). fn gets the batch's context, not its
// caller's: a caller that goes away must not interrupt the connection the
// other writes of the batch share (SQLite would roll their transaction
// back).
type batchJob struct {
	fn   func(ctx context.Context, tx *sql.Tx) (bool, error)
	done chan batchResult
}

type batchResult struct {
	applied bool
	err     error
}

// batcher owns the writing goroutine of a SQLite store.
type batcher struct {
	stop  sync.Once
	jobs  chan batchJob
	quit  chan struct{}
	ended chan struct{}
	// checkpointed is closed when the checkpointing goroutine has ended.
	checkpointed chan struct{}
	// observe, when set (tests), learns the size of each batch.
	observe func(size int)
}

var errStoreClosed = errors.New("storage: the store is closed")

// sqliteWrite runs fn inside a write transaction on SQLite, with other
// writes waiting at the same time. It reports whether fn applied and its
// write committed. fn runs on the writing goroutine: it must use tx with
// the ctx it is given (not its caller's), and not block.
func (s *Store) sqliteWrite(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) (bool, error)) (bool, error) {
	b := &s.batch
	job := batchJob{fn: fn, done: make(chan batchResult, 1)}
	select {
	case b.jobs <- job:
	case <-b.quit:
		return false, translate("write", errStoreClosed)
	case <-ctx.Done():
		return false, translate("write", ctx.Err())
	}
	// Once queued, the write happens: wait for its outcome even if ctx
	// ends, so the caller never reports a failure for a committed write.
	select {
	case r := <-job.done:
		return r.applied, r.err
	case <-b.ended:
		select {
		case r := <-job.done:
			return r.applied, r.err
		default: // queued as the store closed: never run
			return false, translate("write", errStoreClosed)
		}
	}
}

// writeLoop commits the queued writes, a batch at a time, until Close.
func (s *Store) writeLoop() {
	b := &s.batch
	defer close(b.ended)
	batch := make([]batchJob, 0, maxBatch)
	results := make([]batchResult, 0, maxBatch)
	for {
		select {
		case <-b.quit:
			return
		case j := <-b.jobs:
			batch = append(batch[:0], j)
		}
		batch = gather(batch, b.jobs, maxBatch)
		if b.observe != nil {
			b.observe(len(batch))
		}
		results = s.commitBatch(batch, results[:0])
		for i, j := range batch {
			j.done <- results[i]
		}
	}
}

// commitBatch runs the jobs in one transaction, in the process's writer
// turn, and returns their results.
func (s *Store) commitBatch(batch []batchJob, results []batchResult) []batchResult {
	fail := func(err error) []batchResult {
		results = results[:0]
		for range batch {
			results = append(results, batchResult{err: err})
		}
		return results
	}
	ctx := context.Background()
	release, err := s.admitWriter(ctx)
	if err != nil {
		return fail(translate("begin", err))
	}
	defer release()
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fail(translate("begin", err))
	}
	single := len(batch) == 1 // nothing to keep apart: the transaction is the savepoint
	applied := 0
	for _, j := range batch {
		if !single {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
				_ = tx.Rollback()
				return fail(translate("savepoint", err))
			}
		}
		ok, err := j.fn(ctx, tx)
		if err != nil {
			ok = false
		}
		if !single {
			undo := "RELEASE w"
			if !ok {
				undo = "ROLLBACK TO w; RELEASE w"
			}
			if _, err := tx.ExecContext(ctx, undo); err != nil {
				_ = tx.Rollback()
				return fail(translate("savepoint", err))
			}
		}
		results = append(results, batchResult{applied: ok, err: err})
		if ok {
			applied++
		}
	}
	if applied == 0 {
		_ = tx.Rollback()
		return results
	}
	if err := tx.Commit(); err != nil {
		err = translate("commit", err)
		for i := range results {
			if results[i].applied {
				results[i] = batchResult{err: err}
			}
		}
	}
	return results
}

// startWrites starts the writing goroutine (Open, SQLite only).
func (s *Store) startWrites() {
	b := &s.batch
	b.jobs, b.quit, b.ended = make(chan batchJob, maxBatch), make(chan struct{}), make(chan struct{})
	b.checkpointed = make(chan struct{})
	go s.writeLoop()
	go s.checkpointLoop(b.quit, b.checkpointed)
}

// stopWrites ends the writing goroutine, if any (Close; once).
func (s *Store) stopWrites() {
	b := &s.batch
	b.stop.Do(func() {
		if b.quit != nil {
			close(b.quit)
			<-b.ended
			<-b.checkpointed
		}
	})
}
