package storage

import (
	"context"
	"errors"
	"sync"
	"time"
)

// On PostgreSQL every introspection and userinfo call asks AccessTokenStatus,
// and the round trip (waking a database process, a transaction) costs more
// than the two index lookups it carries. Callers asking at the same time
// share one statement instead: the questions go as arrays, one row answers
// each. A question asked alone is a statement of its own, as before; under
// load one statement answers many. Each answer is as fresh as a query of
// its own: the statement starts after the question was asked, so it sees
// every revocation committed before.

// maxStatusBatch bounds the questions of one statement.
const maxStatusBatch = 128

// statusWorkers statements may be in flight at once: one gathers while
// another waits for the database.
const statusWorkers = 2

const accessTokenStatusBatch = `SELECT q.i,
	EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = q.jti AND r.expires_at > q.now),
	EXISTS (SELECT 1 FROM grant_sessions g WHERE g.id = q.sid AND g.revoked_at IS NULL
	        AND g.idle_expires_at > q.now AND g.absolute_expires_at > q.now)
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS q(jti, sid, now, i)`

type statusQuestion struct {
	jti, sid string
	now      time.Time
	done     chan statusAnswer
}

type statusAnswer struct {
	denied, live bool
	err          error
}

// statusBatcher owns the goroutines that ask the grouped questions.
type statusBatcher struct {
	questions chan statusQuestion
	quit      chan struct{}
	ended     chan struct{}
	stop      sync.Once
}

// startStatus starts the status askers (Open, PostgreSQL only).
func (s *Store) startStatus() {
	b := &s.status
	b.questions, b.quit, b.ended = make(chan statusQuestion, maxStatusBatch), make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for range statusWorkers {
		wg.Go(s.statusLoop)
	}
	go func() { wg.Wait(); close(b.ended) }()
}

// stopStatus ends them, if any (Close; once).
func (s *Store) stopStatus() {
	b := &s.status
	b.stop.Do(func() {
		if b.quit != nil {
			close(b.quit)
			<-b.ended
		}
	})
}

// askStatus puts one question to the askers and waits for its answer.
func (s *Store) askStatus(ctx context.Context, jti, sid string, now time.Time) (denied, live bool, err error) {
	b := &s.status
	q := statusQuestion{jti: jti, sid: sid, now: now, done: make(chan statusAnswer, 1)}
	select {
	case b.questions <- q:
	case <-b.quit:
		return false, false, translate("access token status", errStoreClosed)
	case <-ctx.Done():
		return false, false, translate("access token status", ctx.Err())
	}
	select {
	case a := <-q.done:
		return a.denied, a.live, a.err
	case <-b.ended:
		return false, false, translate("access token status", errStoreClosed)
	case <-ctx.Done():
		return false, false, translate("access token status", ctx.Err())
	}
}

// statusLoop answers waiting questions, a statement at a time, until Close.
func (s *Store) statusLoop() {
	b := &s.status
	batch := make([]statusQuestion, 0, maxStatusBatch)
	for {
		select {
		case <-b.quit:
			return
		case q := <-b.questions:
			batch = append(batch[:0], q)
		}
	more:
		for len(batch) < maxStatusBatch {
			select {
			case q := <-b.questions:
				batch = append(batch, q)
			default:
				break more
			}
		}
		answers, err := s.statusBatch(batch)
		for i, q := range batch {
			if err != nil {
				q.done <- statusAnswer{err: err}
			} else {
				q.done <- answers[i]
			}
		}
	}
}

// statusBatch asks the questions in one statement.
func (s *Store) statusBatch(batch []statusQuestion) ([]statusAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jtis, sids, nows := make([]string, len(batch)), make([]string, len(batch)), make([]time.Time, len(batch))
	for i, q := range batch {
		jtis[i], sids[i], nows[i] = q.jti, q.sid, q.now
	}
	stmt, err := s.prepared(ctx, accessTokenStatusBatch)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, jtis, sids, nows)
	if err != nil {
		return nil, translate("access token status", err)
	}
	defer rows.Close()
	answers := make([]statusAnswer, len(batch))
	seen := 0
	for rows.Next() {
		var i int64
		var a statusAnswer
		if err := rows.Scan(&i, &a.denied, &a.live); err != nil {
			return nil, translate("access token status", err)
		}
		if i < 1 || int(i) > len(batch) {
			return nil, translate("access token status", errors.New("answer to an unknown question"))
		}
		answers[i-1] = a
		seen++
	}
	if err := rows.Err(); err != nil {
		return nil, translate("access token status", err)
	}
	if seen != len(batch) {
		return nil, translate("access token status", errors.New("questions left unanswered"))
	}
	return answers, nil
}
