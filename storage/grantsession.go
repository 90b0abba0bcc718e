package storage

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// GrantSession is one authorization a user gave a client, started by a code
// exchange. Its ID is the sid claim of every token issued under it and the
// family of its refresh tokens: revoking the session revokes them all.
//
// A session is live while it is not revoked and now is before both
// IdleExpiresAt and AbsoluteExpiresAt. IdleExpiresAt moves forward on use
// (TouchGrantSession, RotateRefreshToken) but never past AbsoluteExpiresAt
// (storage caps it on every write, the first included).
type GrantSession struct {
	ID       string `gorm:"column:id;primaryKey"`
	UserID   string `gorm:"column:user_id"`
	ClientID string `gorm:"column:client_id"`
	// Scope is the space-separated list of granted scopes.
	Scope    string
	Audience []string `gorm:"serializer:json"`
	// AuthTime is when the user authenticated (the ID token's auth_time).
	AuthTime          time.Time
	CreatedAt         time.Time
	LastUsedAt        time.Time
	IdleExpiresAt     time.Time
	AbsoluteExpiresAt time.Time
	RevokedAt         *time.Time
	RevokedReason     string
	// UserAgent and IP are those of the request that started the session,
	// shown in the session list.
	UserAgent string
	IP        string `gorm:"column:ip"`
}

// TableName pins the table name.
func (GrantSession) TableName() string { return "grant_sessions" }

// Live reports whether the session can still be used at now: not revoked,
// and neither idle- nor absolute-expired (an expiry equal to now has passed).
func (g *GrantSession) Live(now time.Time) bool {
	return g.RevokedAt == nil && now.Before(g.IdleExpiresAt) && now.Before(g.AbsoluteExpiresAt)
}

// row returns the copy of g that is written: a nil Audience becomes [] (the
// column is a NOT NULL JSON array), every time is UTC (see utc), and the
// idle expiry is capped at the absolute one, as every later write keeps it
// (pruning relies on it).
func (g *GrantSession) row() *GrantSession {
	r := *g
	if r.Audience == nil {
		r.Audience = []string{}
	}
	if r.IdleExpiresAt.After(r.AbsoluteExpiresAt) {
		r.IdleExpiresAt = r.AbsoluteExpiresAt
	}
	r.AuthTime, r.CreatedAt, r.LastUsedAt = r.AuthTime.UTC(), r.CreatedAt.UTC(), r.LastUsedAt.UTC()
	r.IdleExpiresAt, r.AbsoluteExpiresAt = r.IdleExpiresAt.UTC(), r.AbsoluteExpiresAt.UTC()
	r.RevokedAt = utc(r.RevokedAt)
	return &r
}

// idleExpiry is when a session used at now goes idle: now+idleTTL, capped
// at the absolute expiry. idleTTL <= 0 means no idle limit.
func idleExpiry(now time.Time, idleTTL time.Duration, absolute time.Time) time.Time {
	if idleTTL <= 0 {
		return absolute.UTC()
	}
	if t := now.Add(idleTTL); t.Before(absolute) {
		return t.UTC()
	}
	return absolute.UTC()
}

// CreateGrantSession inserts g. CreatedAt defaults to the store's clock and
// LastUsedAt to CreatedAt; the expiries are the caller's (storage has no
// policy). ErrConflict when the id is taken.
func (s *Store) CreateGrantSession(ctx context.Context, g *GrantSession) error {
	if g.CreatedAt.IsZero() {
		g.CreatedAt = s.now()
	}
	if g.LastUsedAt.IsZero() {
		g.LastUsedAt = g.CreatedAt
	}
	return translate("create grant session", s.writing(ctx, func(db *gorm.DB) error { return db.Create(g.row()).Error }))
}

// GetGrantSession loads one session, live or not. ErrNotFound when unknown.
func (s *Store) GetGrantSession(ctx context.Context, id string) (*GrantSession, error) {
	var g GrantSession
	if err := s.conn(ctx).Where("id = ?", id).Take(&g).Error; err != nil {
		return nil, translate("get grant session", err)
	}
	return &g, nil
}

// ListActiveGrantSessions returns the user's sessions that are live at now,
// newest first (ties broken by id, descending, so the order is stable).
func (s *Store) ListActiveGrantSessions(ctx context.Context, userID string, now time.Time) ([]GrantSession, error) {
	now = now.UTC()
	var gs []GrantSession
	err := s.conn(ctx).
		Where("user_id = ? AND revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?", userID, now, now).
		Order("created_at DESC, id DESC").
		Find(&gs).Error
	if err != nil {
		return nil, translate("list grant sessions", err)
	}
	return gs, nil
}

// RevokeGrantSession ends session id and revokes every refresh token of it,
// in one transaction. It is idempotent: revoking a revoked session keeps its
// first revocation time and reason. ErrNotFound when unknown.
func (s *Store) RevokeGrantSession(ctx context.Context, id, reason string, now time.Time) error {
	return s.tx(ctx, "revoke grant session", func(ctx context.Context) error {
		db := s.conn(ctx)
		revoked, err := s.revokeSession(db, id, reason, now)
		if err != nil || revoked {
			return err
		}
		// Nothing revoked: unknown, or revoked before.
		var n int64
		if err := db.Model(&GrantSession{}).Where("id = ?", id).Count(&n).Error; err != nil {
			return translate("revoke grant session", err)
		}
		if n == 0 {
			return translate("revoke grant session", ErrNotFound)
		}
		return nil
	})
}

// revokeSession marks session id revoked (unless it already is) and every
// refresh token of it revoked, dropping their sealed successors. It reports
// whether the session row changed. db must be a transaction. The session row
// is written first: every writer of a family locks the session before its
// tokens (see RotateRefreshToken), so they cannot deadlock.
func (s *Store) revokeSession(db *gorm.DB, id, reason string, now time.Time) (bool, error) {
	res := db.Exec("UPDATE grant_sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
		now.UTC(), reason, id)
	if res.Error != nil {
		return false, translate("revoke grant session", res.Error)
	}
	err := db.Exec("UPDATE refresh_tokens SET state = ?, successor_sealed = NULL WHERE session_id = ? AND (state <> ? OR successor_sealed IS NOT NULL)",
		TokenRevoked, id, TokenRevoked).Error
	if err != nil {
		return false, translate("revoke refresh tokens", err)
	}
	return res.RowsAffected > 0, nil
}

// RevokeUserGrantSessions ends every session of the user that is not revoked
// yet (expired ones included, so their tokens are certainly dead) and
// revokes their refresh tokens, in one transaction. It returns how many
// sessions it revoked.
func (s *Store) RevokeUserGrantSessions(ctx context.Context, userID, reason string, now time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, "revoke user grant sessions", func(ctx context.Context) error {
		db := s.conn(ctx)
		if s.dialect == Postgres {
			// Lock the sessions in id order first, as grouped rotations
			// do (groupedwrites.go), so the two never wait for each other
			// in a circle (a deadlock PostgreSQL would end by failing one).
			if err := db.Exec("SELECT id FROM grant_sessions WHERE user_id = ? AND revoked_at IS NULL ORDER BY id FOR UPDATE", userID).Error; err != nil {
				return translate("revoke user grant sessions", err)
			}
		}
		res := db.Exec("UPDATE grant_sessions SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
			now.UTC(), reason, userID)
		if res.Error != nil {
			return translate("revoke user grant sessions", res.Error)
		}
		n = res.RowsAffected
		err := db.Exec("UPDATE refresh_tokens SET state = ?, successor_sealed = NULL WHERE session_id IN (SELECT id FROM grant_sessions WHERE user_id = ?) AND (state <> ? OR successor_sealed IS NOT NULL)",
			TokenRevoked, userID, TokenRevoked).Error
		return translate("revoke user refresh tokens", err)
	})
	return n, err
}

// TouchGrantSession records a use of session id at now: last_used_at = now,
// idle_expires_at = min(now+idleTTL, absolute_expires_at) (idleTTL <= 0: no
// idle limit, the absolute expiry). Only a live session is touched, so a use
// can never revive a session that already ended; ErrNotFound when there is
// no live session with that id.
func (s *Store) TouchGrantSession(ctx context.Context, id string, now time.Time, idleTTL time.Duration) error {
	now = now.UTC()
	var res *gorm.DB
	if idleTTL <= 0 {
		res = s.conn(ctx).Exec(
			"UPDATE grant_sessions SET last_used_at = ?, idle_expires_at = absolute_expires_at "+
				"WHERE id = ? AND revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?",
			now, id, now, now)
	} else {
		idle := now.Add(idleTTL)
		res = s.conn(ctx).Exec(
			"UPDATE grant_sessions SET last_used_at = ?, "+
				"idle_expires_at = CASE WHEN absolute_expires_at < ? THEN absolute_expires_at ELSE ? END "+
				"WHERE id = ? AND revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?",
			now, idle, idle, id, now, now)
	}
	if res.Error != nil {
		return translate("touch grant session", res.Error)
	}
	if res.RowsAffected == 0 {
		return translate("touch grant session", ErrNotFound)
	}
	return nil
}

// lockSession loads the session matching where for writing (SELECT ... FOR UPDATE on
// PostgreSQL; SQLite transactions hold the database write lock from BEGIN)
// and returns ErrNotFound when it is unknown.
func (s *Store) lockSession(db *gorm.DB, where string, args ...any) (*GrantSession, error) {
	if s.dialect == Postgres {
		db = db.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var g GrantSession
	if err := db.Where(where, args...).Take(&g).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, translate("lock grant session", err)
	}
	return &g, nil
}
