package storage

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"
)

// BrowserSession is a user's login at the authorization server (the
// session cookie), keyed by IDHash, the SHA-256 of the cookie value computed
// by the caller: the cookie itself is never stored. It is live while not
// revoked and now is before ExpiresAt.
type BrowserSession struct {
	IDHash     string `gorm:"column:id_hash;primaryKey"`
	UserID     string `gorm:"column:user_id"`
	CreatedAt  time.Time
	AuthTime   time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
	UserAgent  string
	IP         string `gorm:"column:ip"`
}

// TableName pins the table name.
func (BrowserSession) TableName() string { return "browser_sessions" }

// CreateBrowserSession inserts b. CreatedAt defaults to the store's clock,
// LastSeenAt and AuthTime to CreatedAt. ErrConflict when the hash exists.
func (s *Store) CreateBrowserSession(ctx context.Context, b *BrowserSession) error {
	if b.CreatedAt.IsZero() {
		b.CreatedAt = s.now()
	}
	if b.LastSeenAt.IsZero() {
		b.LastSeenAt = b.CreatedAt
	}
	if b.AuthTime.IsZero() {
		b.AuthTime = b.CreatedAt
	}
	r := *b
	r.CreatedAt, r.AuthTime, r.LastSeenAt, r.ExpiresAt = r.CreatedAt.UTC(), r.AuthTime.UTC(), r.LastSeenAt.UTC(), r.ExpiresAt.UTC()
	r.RevokedAt = utc(r.RevokedAt)
	return translate("create browser session", s.writing(ctx, func(db *gorm.DB) error { return db.Create(&r).Error }))
}

// GetBrowserSession loads the session under idHash if it is live at now.
// ErrNotFound when it is unknown, revoked or expired.
func (s *Store) GetBrowserSession(ctx context.Context, idHash string, now time.Time) (*BrowserSession, error) {
	if inTx(ctx) {
		var b BrowserSession
		err := s.conn(ctx).Where("id_hash = ? AND revoked_at IS NULL AND expires_at > ?", idHash, now.UTC()).Take(&b).Error
		if err != nil {
			return nil, translate("get browser session", err)
		}
		return &b, nil
	}
	// Every authorization request of a signed-in person asks: a prepared
	// statement, without the ORM.
	stmt, err := s.prepared(ctx, getBrowserSession)
	if err != nil {
		return nil, err
	}
	b := BrowserSession{IDHash: idHash}
	var created, auth, seen, expires sqlTime
	err = stmt.QueryRowContext(ctx, idHash, now.UTC()).Scan(&b.UserID, &created, &auth, &seen, &expires, &b.UserAgent, &b.IP)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return nil, translate("get browser session", err)
	}
	b.CreatedAt, b.AuthTime, b.LastSeenAt, b.ExpiresAt = created.Time, auth.Time, seen.Time, expires.Time
	return &b, nil
}

const getBrowserSession = `SELECT user_id, created_at, auth_time, last_seen_at, expires_at, user_agent, ip
FROM browser_sessions WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2`

// TouchBrowserSession records a use of a live session at now
// (last_seen_at). It never revives an ended session: ErrNotFound when no
// live session has that hash.
func (s *Store) TouchBrowserSession(ctx context.Context, idHash string, now time.Time) error {
	now = now.UTC()
	res := s.conn(ctx).Exec("UPDATE browser_sessions SET last_seen_at = ? WHERE id_hash = ? AND revoked_at IS NULL AND expires_at > ?",
		now, idHash, now)
	if res.Error != nil {
		return translate("touch browser session", res.Error)
	}
	if res.RowsAffected == 0 {
		return translate("touch browser session", ErrNotFound)
	}
	return nil
}

// RevokeBrowserSession ends the session under idHash (logout). It is
// idempotent: revoking a revoked or expired session keeps its first
// revocation time and returns nil. ErrNotFound when unknown.
func (s *Store) RevokeBrowserSession(ctx context.Context, idHash string, now time.Time) error {
	db := s.conn(ctx)
	res := db.Exec("UPDATE browser_sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL", now.UTC(), idHash)
	if res.Error != nil {
		return translate("revoke browser session", res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	var n int64
	if err := db.Model(&BrowserSession{}).Where("id_hash = ?", idHash).Count(&n).Error; err != nil {
		return translate("revoke browser session", err)
	}
	if n == 0 {
		return translate("revoke browser session", ErrNotFound)
	}
	return nil
}

// RevokeUserBrowserSessions ends every session of the user not revoked yet
// and returns how many it revoked.
func (s *Store) RevokeUserBrowserSessions(ctx context.Context, userID string, now time.Time) (int64, error) {
	res := s.conn(ctx).Exec("UPDATE browser_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", now.UTC(), userID)
	if res.Error != nil {
		return 0, translate("revoke user browser sessions", res.Error)
	}
	return res.RowsAffected, nil
}
