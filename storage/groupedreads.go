package storage

import (
	"context"
	"errors"
	"time"
)

// The grouped reads of PostgreSQL (see grouped.go): the access-token status
// (every introspection and userinfo call) and the authorization code (every
// code exchange).

type statusQuestion struct {
	jti, sid string
	now      time.Time
}

type statusAnswer struct{ denied, live bool }

const accessTokenStatusGroup = `SELECT q.i,
	EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = q.jti AND r.expires_at > q.now),
	EXISTS (SELECT 1 FROM grant_sessions g WHERE g.id = q.sid AND g.revoked_at IS NULL
	        AND g.idle_expires_at > q.now AND g.absolute_expires_at > q.now)
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS q(jti, sid, now, i)`

// askStatuses answers a group of status questions in one statement.
func (s *Store) askStatuses(ctx context.Context, qs []statusQuestion) ([]statusAnswer, error) {
	jtis, sids, nows := make([]string, len(qs)), make([]string, len(qs)), make([]time.Time, len(qs))
	for i, q := range qs {
		jtis[i], sids[i], nows[i] = q.jti, q.sid, q.now
	}
	answers := make([]statusAnswer, len(qs))
	seen, err := s.queryGroup(ctx, "access token status", accessTokenStatusGroup, len(qs), func(scan groupScan) error {
		var a statusAnswer
		i, err := scan(&a.denied, &a.live)
		answers[i] = a
		return err
	}, jtis, sids, nows)
	if err == nil && seen != len(qs) {
		err = translate("access token status", errors.New("questions left unanswered"))
	}
	return answers, err
}

// Each code is fetched by its own index lookup: the LIMIT keeps the
// planner from turning the lateral lookup into a join, which it could plan
// as a scan of the whole table (it cannot know how few keys come).
const authorizationCodeGroup = `SELECT q.i, c.session_id, c.client_id, c.request_data, c.created_at, c.expires_at, c.used_at
FROM unnest($1::text[]) WITH ORDINALITY AS q(sig, i)
CROSS JOIN LATERAL (SELECT * FROM authorization_codes a WHERE a.signature = q.sig LIMIT 1) c`

// askCodes reads a group of authorization codes in one statement: nil
// where there is no such code.
func (s *Store) askCodes(ctx context.Context, sigs []string) ([]*AuthorizationCode, error) {
	codes := make([]*AuthorizationCode, len(sigs))
	_, err := s.queryGroup(ctx, "get authorization code", authorizationCodeGroup, len(sigs), func(scan groupScan) error {
		var c AuthorizationCode
		var created, expires, used sqlTime
		i, err := scan(&c.SessionID, &c.ClientID, &c.RequestData, &created, &expires, &used)
		if err != nil {
			return err
		}
		c.Signature, c.CreatedAt, c.ExpiresAt = sigs[i], created.Time, expires.Time
		if !used.Time.IsZero() {
			c.UsedAt = &used.Time
		}
		codes[i] = &c
		return nil
	}, sigs)
	return codes, err
}

// groupScan scans a row of a grouped statement into dest and returns the
// index of the question it answers (the row's first column is its 1-based
// ordinal).
type groupScan func(dest ...any) (int, error)

// queryGroup runs a grouped statement for n questions, hands each row to
// row, and returns how many rows there were.
func (s *Store) queryGroup(ctx context.Context, op, query string, n int, row func(scan groupScan) error, args ...any) (int, error) {
	rows, err := s.groupDB.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, translate(op, err)
	}
	defer rows.Close()
	dests := make([]any, 0, 8)
	scan := func(dest ...any) (int, error) {
		var ord int64
		dests = append(append(dests[:0], &ord), dest...)
		if err := rows.Scan(dests...); err != nil {
			return 0, err
		}
		if ord < 1 || ord > int64(n) {
			return 0, errors.New("an answer to no question")
		}
		return int(ord - 1), nil
	}
	seen := 0
	for rows.Next() {
		if err := row(scan); err != nil {
			return 0, translate(op, err)
		}
		seen++
	}
	if err := rows.Err(); err != nil {
		return 0, translate(op, err)
	}
	return seen, nil
}
