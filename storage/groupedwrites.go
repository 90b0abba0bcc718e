package storage

import (
	"context"
	"errors"
	"time"
)

// The grouped writes of PostgreSQL (see grouped.go): the common refresh
// rotation and the code redemption. Concurrent ones share a statement,
// hence a transaction: a group commits together or not at all. A group
// that fails (a deadlock, a taken id, a lost connection) answers each of
// its writes with errGroupFailed, and each is then made again in a
// statement of its own (rotateFastPostgres, redeemPostgres), which decides
// what that write's error is. Until then nothing of the group was written,
// so making it again is safe.

// errGroupFailed wraps the error of a grouped write's statement.
type errGroupFailed struct{ err error }

func (e errGroupFailed) Error() string { return "grouped write failed: " + e.err.Error() }
func (e errGroupFailed) Unwrap() error { return e.err }

func groupFailed(err error) bool {
	var g errGroupFailed
	return errors.As(err, &g)
}

// rotateQuestion is one common rotation (see rotateFast).
type rotateQuestion struct {
	parent, child, client string
	now, childExpires     time.Time
	// sealed (nil: no reuse window), childData (nil: the parent's request)
	// and idle (nil: no idle limit) are NULL when nil.
	sealed, childData []byte
	idle              *time.Time
}

// rotateAnswer: applied is false when the rotation was not the common
// case (nothing was written for it); then the parent's columns are empty.
type rotateAnswer struct {
	applied           bool
	sessionID, client string
	requestData       []byte
	created, expires  time.Time
}

// rotateGroupPostgres is rotateFastPostgres for many rotations: the
// sessions of the parents are locked first, in id order (two groups, or a
// group and RevokeUserGrantSessions, never wait for each other in a
// circle), then each parent that is the active token of a live session,
// for its client, moves to rotated, its child is inserted, and its session
// touched. The ANY conditions give every table
// read an index condition (the grouped statements' connections never scan
// a table whole, grouped.go). A parent
// asked twice in one group is rotated once (UPDATE ... FROM uses one of
// the joining rows); the other question gets no row, as when it comes
// after the first, and goes to the general rotation.
const rotateGroupPostgres = `WITH q AS (
	SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::bytea[], $5::text[], $6::bytea[], $7::timestamptz[], $8::timestamptz[])
		WITH ORDINALITY AS q(parent, now, child, sealed, client, child_data, child_expires, idle, i)
), s AS (
	SELECT g.id, g.revoked_at, g.idle_expires_at, g.absolute_expires_at
	FROM grant_sessions g
	WHERE g.id = ANY (ARRAY(SELECT t.session_id FROM refresh_tokens t WHERE t.signature = ANY ($1::text[])))
	ORDER BY g.id
	FOR UPDATE
), p AS (
	UPDATE refresh_tokens t
	SET state = 'rotated', rotated_at = q.now, successor_signature = q.child, successor_sealed = q.sealed
	FROM q, s
	WHERE t.signature = ANY ($1::text[]) AND t.signature = q.parent AND t.session_id = s.id
	  AND s.revoked_at IS NULL AND s.idle_expires_at > q.now AND s.absolute_expires_at > q.now
	  AND t.state = 'active' AND (q.client = '' OR t.client_id = q.client) AND t.expires_at > q.now
	RETURNING q.i, q.now, q.child, q.child_data, q.child_expires, q.idle,
		t.session_id, t.client_id, t.request_data, t.created_at, t.expires_at
), c AS (
	INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state, successor_signature)
	SELECT p.child, p.session_id, p.client_id, COALESCE(p.child_data, p.request_data), p.now, p.child_expires, 'active', ''
	FROM p
), g AS (
	UPDATE grant_sessions
	SET last_used_at = p.now,
	    idle_expires_at = CASE WHEN p.idle IS NULL OR absolute_expires_at < p.idle THEN absolute_expires_at ELSE p.idle END
	FROM p
	WHERE grant_sessions.id = ANY (ARRAY(SELECT session_id FROM p)) AND grant_sessions.id = p.session_id
)
SELECT p.i, p.session_id, p.client_id, p.request_data, p.created_at, p.expires_at FROM p`

// askRotations makes a group of common rotations in one statement.
func (s *Store) askRotations(ctx context.Context, qs []rotateQuestion) ([]rotateAnswer, error) {
	n := len(qs)
	parents, children, clients := make([]string, n), make([]string, n), make([]string, n)
	nows, expires := make([]time.Time, n), make([]time.Time, n)
	sealed, data := make([][]byte, n), make([][]byte, n)
	idle := make([]*time.Time, n)
	for i, q := range qs {
		parents[i], children[i], clients[i] = q.parent, q.child, q.client
		nows[i], expires[i] = q.now, q.childExpires
		sealed[i], data[i], idle[i] = q.sealed, q.childData, q.idle
	}
	answers := make([]rotateAnswer, n)
	_, err := s.queryGroup(ctx, "rotate refresh tokens", rotateGroupPostgres, n, func(scan groupScan) error {
		var a rotateAnswer
		var created, expiry sqlTime
		i, err := scan(&a.sessionID, &a.client, &a.requestData, &created, &expiry)
		if err != nil {
			return err
		}
		a.applied, a.created, a.expires = true, created.Time, expiry.Time
		answers[i] = a
		return nil
	}, parents, nows, children, sealed, clients, data, expires, idle)
	if err != nil {
		return nil, errGroupFailed{err}
	}
	return answers, nil
}

// redeemQuestion is one code redemption: the code, when it is used, the
// grant session to insert and, when there is one, its first refresh token.
type redeemQuestion struct {
	code     string
	now      time.Time
	session  GrantSession // as row() makes it
	audience string       // session.Audience in JSON
	token    *RefreshToken
}

// redeemGroupPostgres is redeemPostgres(WithToken) for many redemptions:
// each unused code becomes used and its grant session and first refresh
// token (where there is one: a NULL signature means none) are inserted. A
// code asked twice in one group is used once: only one of the two gets a
// row, the other finds it used. The codes are found through their index,
// in an order every group shares; should two groups still deadlock, the
// one PostgreSQL aborts fails, and its redemptions run again alone.
const redeemGroupPostgres = `WITH q AS (
	SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[],
		$15::text[], $16::bytea[], $17::timestamptz[], $18::timestamptz[])
		WITH ORDINALITY AS q(code, now, id, user_id, client_id, scope, audience, auth_time, created_at, last_used_at,
			idle_expires_at, absolute_expires_at, user_agent, ip, token, token_data, token_created, token_expires, i)
), c AS (
	UPDATE authorization_codes a SET used_at = q.now
	FROM q
	WHERE a.signature = ANY ($1::text[]) AND a.signature = q.code AND a.used_at IS NULL
	RETURNING q.i
), g AS (
	INSERT INTO grant_sessions (id, user_id, client_id, scope, audience, auth_time, created_at,
		last_used_at, idle_expires_at, absolute_expires_at, user_agent, ip)
	SELECT q.id, q.user_id, q.client_id, q.scope, q.audience, q.auth_time, q.created_at,
		q.last_used_at, q.idle_expires_at, q.absolute_expires_at, q.user_agent, q.ip
	FROM q JOIN c ON c.i = q.i
), t AS (
	INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state, successor_signature)
	SELECT q.token, q.id, q.client_id, q.token_data, q.token_created, q.token_expires, 'active', ''
	FROM q JOIN c ON c.i = q.i
	WHERE q.token IS NOT NULL
)
SELECT c.i FROM c`

// askRedemptions makes a group of redemptions in one statement: true for
// each that used its code.
func (s *Store) askRedemptions(ctx context.Context, qs []redeemQuestion) ([]bool, error) {
	n := len(qs)
	codes, ids, users, clients, scopes, audiences := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	agents, ips := make([]string, n), make([]string, n)
	nows, auth, created, used, idle, absolute := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	tokens, tokenData := make([]*string, n), make([][]byte, n)
	tokenCreated, tokenExpires := make([]*time.Time, n), make([]*time.Time, n)
	for i, q := range qs {
		g := q.session
		codes[i], nows[i] = q.code, q.now
		ids[i], users[i], clients[i], scopes[i], audiences[i] = g.ID, g.UserID, g.ClientID, g.Scope, q.audience
		auth[i], created[i], used[i], idle[i], absolute[i] = g.AuthTime, g.CreatedAt, g.LastUsedAt, g.IdleExpiresAt, g.AbsoluteExpiresAt
		agents[i], ips[i] = g.UserAgent, g.IP
		if t := q.token; t != nil {
			tokens[i], tokenData[i], tokenCreated[i], tokenExpires[i] = &t.Signature, t.RequestData, &t.CreatedAt, &t.ExpiresAt
		}
	}
	won := make([]bool, n)
	_, err := s.queryGroup(ctx, "redeem authorization codes", redeemGroupPostgres, n, func(scan groupScan) error {
		i, err := scan()
		if err == nil {
			won[i] = true
		}
		return err
	}, codes, nows, ids, users, clients, scopes, audiences, auth, created, used, idle, absolute, agents, ips,
		tokens, tokenData, tokenCreated, tokenExpires)
	if err != nil {
		return nil, errGroupFailed{err}
	}
	return won, nil
}
