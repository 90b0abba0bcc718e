package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Redemption is what a code exchange writes: the code becomes used, and
// the grant it authorized starts, with its first refresh token when one is
// issued.
type Redemption struct {
	CodeSignature string
	// Now is when the code is used.
	Now time.Time
	// Session is the grant session to start (see CreateGrantSession; the
	// zero CreatedAt and LastUsedAt are Now).
	Session *GrantSession
	// FirstToken, when not nil, is the session's first refresh token (see
	// CreateRefreshToken: it is stored active in Session, for its client).
	FirstToken *RefreshToken
}

// RedeemAuthorizationCode makes a code exchange's writes at once, all or
// nothing: the code is marked used only if it was unused, the grant session
// is inserted, and so is its first refresh token. Of concurrent
// redemptions of one code exactly one succeeds; the others (and any later
// one) get ErrConflict and write nothing. ErrNotFound when the code is
// unknown.
//
// It is one statement on PostgreSQL, shared by concurrent redemptions
// (groupedwrites.go), and one write transaction of three prepared
// statements on SQLite, grouped too (sqlitebatch.go): every login pays for
// it.
func (s *Store) RedeemAuthorizationCode(ctx context.Context, r Redemption) error {
	if r.Session == nil {
		return errors.New("storage: redeem authorization code: no grant session")
	}
	now := r.Now.UTC()
	if now.IsZero() {
		now = s.now()
	}
	g := *r.Session.row()
	if g.CreatedAt.IsZero() {
		g.CreatedAt = now
	}
	if g.LastUsedAt.IsZero() {
		g.LastUsedAt = g.CreatedAt
	}
	audience, err := json.Marshal(g.Audience)
	if err != nil {
		return fmt.Errorf("storage: redeem authorization code: %w", err)
	}
	sessArgs := []any{g.ID, g.UserID, g.ClientID, g.Scope, string(audience), g.AuthTime, g.CreatedAt, g.LastUsedAt,
		g.IdleExpiresAt, g.AbsoluteExpiresAt, g.UserAgent, g.IP}
	// The token's columns; a nil slice when there is none.
	var tokArgs []any
	var token *RefreshToken
	if t := r.FirstToken; t != nil {
		created := t.CreatedAt
		if created.IsZero() {
			created = now
		}
		client := t.ClientID
		if client == "" {
			client = g.ClientID
		}
		if client != g.ClientID {
			// Not ErrConflict, which means a used code.
			return fmt.Errorf("storage: redeem authorization code: token client %q is not the session's %q", client, g.ClientID)
		}
		token = &RefreshToken{Signature: t.Signature, RequestData: nonNil(t.RequestData), CreatedAt: created.UTC(), ExpiresAt: t.ExpiresAt.UTC()}
		tokArgs = []any{token.Signature, g.ID, client, token.RequestData, token.CreatedAt, token.ExpiresAt}
	}

	var used bool
	switch s.dialect {
	case Postgres:
		if s.redemptions != nil {
			var err error
			used, err = s.redemptions.askOne(ctx, redeemQuestion{code: r.CodeSignature, now: now, session: g, audience: string(audience), token: token})
			if err != nil && !groupFailed(err) {
				return err
			}
			if err == nil {
				break
			}
			// The group failed: this redemption alone decides its error.
		}
		query := redeemPostgres
		args := append([]any{r.CodeSignature, now}, sessArgs...)
		if tokArgs != nil {
			query = redeemPostgresWithToken
			args = append(args, tokArgs[0], tokArgs[3], tokArgs[4], tokArgs[5])
		}
		stmt, err := s.prepared(ctx, query)
		if err != nil {
			return err
		}
		if err := stmt.QueryRowContext(ctx, args...).Scan(&used); err != nil {
			return redeemErr(err)
		}
	default:
		_, err := s.sqliteWrite(ctx, func(ctx context.Context, tx *sql.Tx) (bool, error) {
			code, err := s.prepared(ctx, redeemCode)
			if err != nil {
				return false, err
			}
			res, err := tx.StmtContext(ctx, code).ExecContext(ctx, now, r.CodeSignature)
			if err != nil {
				return false, translate("redeem authorization code", err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return false, translate("redeem authorization code", err)
			}
			used = true
			sess, err := s.prepared(ctx, insertGrantSession)
			if err != nil {
				return false, err
			}
			if _, err := tx.StmtContext(ctx, sess).ExecContext(ctx, sessArgs...); err != nil {
				return false, redeemErr(err)
			}
			if tokArgs != nil {
				tok, err := s.prepared(ctx, insertFirstRefreshToken)
				if err != nil {
					return false, err
				}
				if _, err := tx.StmtContext(ctx, tok).ExecContext(ctx, tokArgs...); err != nil {
					return false, redeemErr(err)
				}
			}
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	if used {
		return nil
	}
	// Nothing written: a used code, or none at all (rare; one more read).
	if _, err := s.GetAuthorizationCode(ctx, r.CodeSignature); err != nil {
		return translate("redeem authorization code", err)
	}
	return translate("redeem authorization code: already used", ErrConflict)
}

// redeemErr translates a failed redemption. A taken session id or token
// signature is not the caller's ErrConflict (a used code): the code was
// unused, and nothing was written.
func redeemErr(err error) error {
	err = translate("redeem authorization code", err)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("storage: redeem authorization code: session id or token signature taken: %w: %v", ErrUnavailable, err)
	}
	return err
}

const (
	redeemCode = `UPDATE authorization_codes SET used_at = $1 WHERE signature = $2 AND used_at IS NULL`

	insertGrantSession = `INSERT INTO grant_sessions (id, user_id, client_id, scope, audience, auth_time, created_at,
	last_used_at, idle_expires_at, absolute_expires_at, user_agent, ip)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`

	insertFirstRefreshToken = `INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state, successor_signature)
	VALUES ($1, $2, $3, $4, $5, $6, 'active', '')`

	// On PostgreSQL the three writes are one statement: the session is
	// inserted only if the code was unused, the token only with the
	// session (the foreign key is checked at the statement's end, when the
	// session row is there).
	redeemPostgresCTE = `WITH c AS (
	UPDATE authorization_codes SET used_at = $2 WHERE signature = $1 AND used_at IS NULL RETURNING signature
), g AS (
	INSERT INTO grant_sessions (id, user_id, client_id, scope, audience, auth_time, created_at,
		last_used_at, idle_expires_at, absolute_expires_at, user_agent, ip)
	SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM c
	RETURNING id, client_id
)`
	redeemPostgres          = redeemPostgresCTE + `SELECT EXISTS (SELECT 1 FROM g)`
	redeemPostgresWithToken = redeemPostgresCTE + `, t AS (
	INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state, successor_signature)
	SELECT $15, g.id, g.client_id, $16, $17, $18, 'active', '' FROM g
	RETURNING signature
)
SELECT EXISTS (SELECT 1 FROM t)`
)
