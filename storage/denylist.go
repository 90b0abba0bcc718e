package storage

import (
	"context"
	"gorm.io/gorm"
	"time"
)

// revokedAccessToken is one revoked JWT access token, kept until the
// token's own expiry (after it the token is refused anyway).
type revokedAccessToken struct {
	JTI       string `gorm:"column:jti;primaryKey"`
	ExpiresAt time.Time
	RevokedAt time.Time
}

func (revokedAccessToken) TableName() string { return "revoked_access_tokens" }

// DenyAccessToken records that the access token jti, which expires at exp,
// was revoked at now. It is idempotent: denying a denied token keeps the
// first revocation time (and the later of the two expiries).
func (s *Store) DenyAccessToken(ctx context.Context, jti string, exp, now time.Time) error {
	err := s.writing(ctx, func(db *gorm.DB) error {
		return db.Exec(
			"INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?) "+
				"ON CONFLICT (jti) DO UPDATE SET expires_at = CASE WHEN excluded.expires_at > revoked_access_tokens.expires_at "+
				"THEN excluded.expires_at ELSE revoked_access_tokens.expires_at END",
			jti, exp.UTC(), now.UTC()).Error
	})
	return translate("deny access token", err)
}

// IsAccessTokenDenied reports whether jti was revoked and has not expired
// at now (an expiry equal to now has passed).
func (s *Store) IsAccessTokenDenied(ctx context.Context, jti string, now time.Time) (bool, error) {
	var n int64
	err := s.conn(ctx).Model(&revokedAccessToken{}).Where("jti = ? AND expires_at > ?", jti, now.UTC()).Count(&n).Error
	if err != nil {
		return false, translate("check denied access token", err)
	}
	return n > 0, nil
}

// AccessTokenStatus answers, in one round trip, the two questions that
// decide whether a signature-valid access token is still active at now:
// was its jti revoked, and is its grant session sid live (not revoked, not
// idle- or absolutely expired)? sid "" (a client_credentials token) counts
// as live.
func (s *Store) AccessTokenStatus(ctx context.Context, jti, sid string, now time.Time) (denied, sessionLive bool, err error) {
	if s.status != nil && !inTx(ctx) {
		a, err := s.status.askOne(ctx, statusQuestion{jti: jti, sid: sid, now: now.UTC()})
		return a.denied, a.live || sid == "", err
	}
	stmt, err := s.prepared(ctx, accessTokenStatusQuery)
	if err != nil {
		return false, false, err
	}
	var live bool
	if err := stmt.QueryRowContext(ctx, jti, now.UTC(), sid).Scan(&denied, &live); err != nil {
		return false, false, translate("access token status", err)
	}
	return denied, live || sid == "", nil
}

// accessTokenStatusQuery is asked on every introspection and userinfo call
// on SQLite (PostgreSQL groups concurrent questions: groupedreads.go): a
// prepared statement, without the ORM.
const accessTokenStatusQuery = `SELECT
	EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1 AND expires_at > $2),
	EXISTS (SELECT 1 FROM grant_sessions WHERE id = $3 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2)`
