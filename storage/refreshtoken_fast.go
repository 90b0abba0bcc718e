package storage

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The common rotation — an active, unexpired token of a live session,
// presented by its client — is the hot path of every refresh. rotateFast
// does it with the fewest statements each database allows, as prepared
// statements; anything else (no such token, replay, theft, revoked,
// expired) finds no row there and goes to rotate, which decides every
// case. Both paths take the same locks in the same order (session, then
// token), so they serialize with each other and with revocations.

// rotateFastPostgres is the whole rotation in one statement (one round
// trip, its own transaction): lock the live session, move the parent from
// active to rotated, insert the child, touch the session. Concurrent
// rotations of one token queue on the session lock; the later ones then
// find the parent no longer active (READ COMMITTED re-checks the updated
// row) and return no row. The child is inserted after the parent left
// 'active' (it is built from the UPDATE's output), so the one-active-token
// index does not see two.
const rotateFastPostgres = `WITH s AS (
	SELECT id FROM grant_sessions
	WHERE id = (SELECT session_id FROM refresh_tokens WHERE signature = $1)
	  AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2
	FOR UPDATE
), p AS (
	UPDATE refresh_tokens t
	SET state = 'rotated', rotated_at = $2, successor_signature = $3, successor_sealed = $4
	FROM s
	WHERE t.signature = $1 AND t.session_id = s.id AND t.state = 'active'
	  AND ($5 = '' OR t.client_id = $5) AND t.expires_at > $2
	RETURNING t.session_id, t.client_id, t.request_data, t.created_at, t.expires_at
), c AS (
	INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state, successor_signature)
	SELECT $3, p.session_id, p.client_id, COALESCE($6, p.request_data), $2, $7, 'active', ''
	FROM p
	RETURNING signature
), g AS (
	UPDATE grant_sessions
	SET last_used_at = $2,
	    idle_expires_at = CASE WHEN $8::timestamptz IS NULL OR absolute_expires_at < $8 THEN absolute_expires_at ELSE $8 END
	FROM p
	WHERE grant_sessions.id = p.session_id
	RETURNING grant_sessions.id
)
SELECT p.session_id, p.client_id, p.request_data, p.created_at, p.expires_at
FROM p, c, g`

// On SQLite the rotation is three statements in one write transaction
// (SQLite cannot write inside WITH); the transaction holds the database's
// write lock from BEGIN IMMEDIATE, which orders it with every other writer.
const (
	rotateFastSQLiteParent = `UPDATE refresh_tokens
	SET state = 'rotated', rotated_at = ?1, successor_signature = ?2, successor_sealed = ?3
	WHERE signature = ?4 AND state = 'active' AND (?5 = '' OR client_id = ?5) AND expires_at > ?1
	  AND EXISTS (SELECT 1 FROM grant_sessions g WHERE g.id = refresh_tokens.session_id
	              AND g.revoked_at IS NULL AND g.idle_expires_at > ?1 AND g.absolute_expires_at > ?1)
	RETURNING session_id, client_id, request_data, created_at, expires_at`
	rotateFastSQLiteChild = `INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state, successor_signature)
	VALUES (?, ?, ?, ?, ?, ?, 'active', '')`
	rotateFastSQLiteSession = `UPDATE grant_sessions
	SET last_used_at = ?1,
	    idle_expires_at = CASE WHEN ?2 IS NULL OR absolute_expires_at < ?2 THEN absolute_expires_at ELSE ?2 END
	WHERE id = ?3`
)

// rotateFast tries the common rotation. ok is false when it did not apply
// (nothing was changed): the caller then runs the general rotate. The child
// is made before knowing whether it is needed.
func (s *Store) rotateFast(ctx context.Context, req RotateRequest, now time.Time, newChild func() (RefreshToken, []byte, error)) (res RotateResult, ok bool, err error) {
	c, sealed, err := newChild()
	if err != nil {
		return RotateResult{}, false, err
	}
	if c.Signature == "" {
		return RotateResult{}, false, errors.New("storage: rotate refresh token: NewChild returned no signature")
	}
	var keep []byte // NULL unless there is a window to replay in
	if req.ReuseWindow > 0 && len(sealed) > 0 {
		keep = sealed
	}
	var idle any // NULL: no idle limit, the session lasts to its absolute expiry
	if req.IdleTTL > 0 {
		idle = now.Add(req.IdleTTL)
	}
	var childData any // NULL: the child inherits the parent's request
	if c.RequestData != nil {
		childData = c.RequestData
	}
	expires := c.ExpiresAt.UTC()

	parent := RefreshToken{Signature: req.ParentSignature, State: TokenActive}
	var created, expiry sqlTime
	scan := func(row *sql.Row) error {
		return row.Scan(&parent.SessionID, &parent.ClientID, &parent.RequestData, &created, &expiry)
	}
	switch s.dialect {
	case Postgres:
		if s.rotations != nil {
			q := rotateQuestion{parent: req.ParentSignature, child: c.Signature, client: req.ClientID,
				now: now, childExpires: expires, sealed: keep, childData: c.RequestData}
			if req.IdleTTL > 0 {
				t := now.Add(req.IdleTTL)
				q.idle = &t
			}
			a, err := s.rotations.askOne(ctx, q)
			if err != nil && !groupFailed(err) {
				return RotateResult{}, false, err
			}
			if err == nil {
				if !a.applied {
					return RotateResult{}, false, nil
				}
				parent.SessionID, parent.ClientID, parent.RequestData = a.sessionID, a.client, a.requestData
				created.Time, expiry.Time = a.created, a.expires
				break
			}
			// The group failed: this rotation alone decides its error.
		}
		stmt, err := s.prepared(ctx, rotateFastPostgres)
		if err != nil {
			return RotateResult{}, false, err
		}
		err = scan(stmt.QueryRowContext(ctx, req.ParentSignature, now, c.Signature, keep, req.ClientID, childData, expires, idle))
		if errors.Is(err, sql.ErrNoRows) {
			return RotateResult{}, false, nil
		}
		if err != nil {
			return RotateResult{}, false, translate("rotate refresh token", err)
		}
	default:
		done, err := s.sqliteWrite(ctx, func(ctx context.Context, tx *sql.Tx) (bool, error) {
			parentStmt, err := s.prepared(ctx, rotateFastSQLiteParent)
			if err != nil {
				return false, err
			}
			err = scan(tx.StmtContext(ctx, parentStmt).QueryRowContext(ctx, now, c.Signature, keep, req.ParentSignature, req.ClientID))
			if errors.Is(err, sql.ErrNoRows) {
				return false, nil
			}
			if err != nil {
				return false, translate("rotate refresh token", err)
			}
			data := c.RequestData
			if data == nil {
				data = parent.RequestData
			}
			childStmt, err := s.prepared(ctx, rotateFastSQLiteChild)
			if err != nil {
				return false, err
			}
			if _, err := tx.StmtContext(ctx, childStmt).ExecContext(ctx, c.Signature, parent.SessionID, parent.ClientID, data, now, expires); err != nil {
				return false, translate("create rotated refresh token", err)
			}
			sessStmt, err := s.prepared(ctx, rotateFastSQLiteSession)
			if err != nil {
				return false, err
			}
			if _, err := tx.StmtContext(ctx, sessStmt).ExecContext(ctx, now, idle, parent.SessionID); err != nil {
				return false, translate("touch grant session", err)
			}
			return true, nil
		})
		if err != nil || !done {
			return RotateResult{}, false, err
		}
	}
	parent.CreatedAt, parent.ExpiresAt = created.Time, expiry.Time
	child := RefreshToken{
		Signature:   c.Signature,
		SessionID:   parent.SessionID,
		ClientID:    parent.ClientID,
		RequestData: c.RequestData,
		CreatedAt:   now,
		ExpiresAt:   expires,
		State:       TokenActive,
	}
	if child.RequestData == nil {
		child.RequestData = parent.RequestData
	}
	return RotateResult{Outcome: RotateRotated, SessionID: parent.SessionID, Parent: &parent, Child: &child, Sealed: sealed}, true, nil
}
