package storage

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// On PostgreSQL the round trip of a one-row statement (waking a database
// process, a transaction, a commit) costs more than the index work it
// carries. The hottest reads and writes are therefore asked in groups:
// callers asking at the same time share one statement (their arguments go
// as arrays, a row answers each question that applied). A statement asked
// alone is a group of one; under load one statement answers many. Each
// answer is as fresh as a statement of its own: the group's starts after
// the question was asked, so it sees every write committed before. A
// group of writes commits together or not at all (groupedwrites.go).

// The grouped statements run on a pool of their own (groupDB), whose
// connections plan every statement once, generically, and never with a
// sequential scan (enable_seqscan off): a plan made while a table is small
// would otherwise keep scanning it whole as it grows (measured: a
// sequential scan of grant_sessions, bloated by the rotations' updates,
// made grouped rotations take 15-85 ms until autovacuum's ANALYZE replaced
// the plan). Every table they read is read by an index; planning them at
// every execution instead cost the database a sixth of its CPU.

// groupKinds is the number of grouped statements: access-token status,
// authorization code, rotation, redemption.
const groupKinds = 4

// maxGroup bounds the questions of one statement.
const maxGroup = 128

// groupAskers statements of one kind may be in flight at once: one gathers
// while another waits for the database.
const groupAskers = 2

type groupQuestion[Q, A any] struct {
	q    Q
	done chan groupAnswer[A]
}

type groupAnswer[A any] struct {
	a   A
	err error
}

// stmtGroup asks questions of type Q in groups with ask, which answers a
// group in one statement (answers in the questions' order).
type stmtGroup[Q, A any] struct {
	op        string // names the statement in errors
	ask       func(ctx context.Context, qs []Q) ([]A, error)
	questions chan groupQuestion[Q, A]
	quit      chan struct{}
	ended     chan struct{}
	stop      sync.Once
}

func newStmtGroup[Q, A any](op string, ask func(ctx context.Context, qs []Q) ([]A, error)) *stmtGroup[Q, A] {
	g := &stmtGroup[Q, A]{op: op, ask: ask,
		questions: make(chan groupQuestion[Q, A], maxGroup), quit: make(chan struct{}), ended: make(chan struct{})}
	var wg sync.WaitGroup
	for range groupAskers {
		wg.Go(g.loop)
	}
	go func() { wg.Wait(); close(g.ended) }()
	return g
}

// close ends the askers (once); questions not yet answered get
// errStoreClosed.
func (g *stmtGroup[Q, A]) close() {
	if g == nil {
		return
	}
	g.stop.Do(func() {
		close(g.quit)
		<-g.ended
	})
}

// askOne puts q to the askers and waits for its answer.
func (g *stmtGroup[Q, A]) askOne(ctx context.Context, q Q) (A, error) {
	var zero A
	gq := groupQuestion[Q, A]{q: q, done: make(chan groupAnswer[A], 1)}
	select {
	case g.questions <- gq:
	case <-g.quit:
		return zero, translate(g.op, errStoreClosed)
	case <-ctx.Done():
		return zero, translate(g.op, ctx.Err())
	}
	select {
	case r := <-gq.done:
		return r.a, r.err
	case <-g.ended:
		return zero, translate(g.op, errStoreClosed)
	case <-ctx.Done():
		return zero, translate(g.op, ctx.Err())
	}
}

// loop answers waiting questions, a statement at a time, until close.
func (g *stmtGroup[Q, A]) loop() {
	batch := make([]groupQuestion[Q, A], 0, maxGroup)
	qs := make([]Q, 0, maxGroup)
	for {
		select {
		case <-g.quit:
			return
		case q := <-g.questions:
			batch = append(batch[:0], q)
		}
		batch = gather(batch, g.questions, maxGroup)
		qs = qs[:0]
		for _, q := range batch {
			qs = append(qs, q.q)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		answers, err := g.ask(ctx, qs)
		cancel()
		for i, q := range batch {
			if err != nil {
				q.done <- groupAnswer[A]{err: err}
			} else {
				q.done <- groupAnswer[A]{a: answers[i]}
			}
		}
	}
}

// gather appends to batch whatever waits in ch, up to max in all, without
// waiting: a group is what came while the previous one was served.
func gather[T any](batch []T, ch <-chan T, max int) []T {
	for len(batch) < max {
		select {
		case x := <-ch:
			batch = append(batch, x)
		default:
			return batch
		}
	}
	return batch
}

// openGroupDB opens the pool of the grouped statements on the PostgreSQL
// database of driverDSN: one connection per asker.
func openGroupDB(driverDSN string, lifetime time.Duration) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(driverDSN)
	if err != nil {
		return nil, fmt.Errorf("grouped statements' connections: %w", err)
	}
	cfg.RuntimeParams["enable_seqscan"] = "off"
	cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(groupKinds * groupAskers)
	db.SetMaxIdleConns(groupKinds * groupAskers)
	db.SetConnMaxLifetime(lifetime)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}
