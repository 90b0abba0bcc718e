package storage

import (
	"context"
	"time"
)

type usedJTI struct {
	JTI       string `gorm:"column:jti;primaryKey"`
	ExpiresAt time.Time
}

func (usedJTI) TableName() string { return "used_jtis" }

// UseJTI records a JWT id until exp. It returns ErrConflict when the id was
// already recorded and has not expired: the insert against the primary key is
// the atomic check, so two concurrent uses cannot both pass. Expired ids are
// purged first so a legitimately reused id after expiry is accepted.
func (s *Store) UseJTI(ctx context.Context, jti string, exp time.Time) error {
	db := s.conn(ctx)
	if err := db.Where("jti = ? AND expires_at <= ?", jti, s.now()).Delete(&usedJTI{}).Error; err != nil {
		return translate("purge jti", err)
	}
	return translate("use jti", db.Create(&usedJTI{JTI: jti, ExpiresAt: exp.UTC()}).Error)
}

// JTIUsed reports whether jti is recorded and not yet expired.
func (s *Store) JTIUsed(ctx context.Context, jti string) (bool, error) {
	var n int64
	if err := s.conn(ctx).Model(&usedJTI{}).Where("jti = ? AND expires_at > ?", jti, s.now()).Count(&n).Error; err != nil {
		return false, translate("check jti", err)
	}
	return n > 0, nil
}
