package storage

import (
	"context"
	"time"
)

// SigningKey is one asymmetric key of the server. PrivateKey is ciphertext:
// the keys package encrypts before storing and decrypts after loading.
type SigningKey struct {
	KID        string `gorm:"column:kid;primaryKey"`
	Alg        string
	PrivateKey []byte
	// PublicJWK is the public half as a JWK (JSON), served in the JWKS.
	PublicJWK string `gorm:"column:public_jwk"`
	CreatedAt time.Time
	// ActivatesAt is when the key starts signing. Until then it is only
	// published, so verifiers' JWKS caches learn it first.
	ActivatesAt time.Time
	// RetiresAt, once a successor is scheduled, is when the key leaves the
	// JWKS: the successor's activation plus the longest token lifetime.
	RetiresAt *time.Time
}

// TableName pins the table name.
func (SigningKey) TableName() string { return "signing_keys" }

// ListSigningKeys returns every stored key ordered by activation time.
func (s *Store) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var ks []SigningKey
	if err := s.conn(ctx).Order("activates_at, kid").Find(&ks).Error; err != nil {
		return nil, translate("list signing keys", err)
	}
	return ks, nil
}

// KeyChange is what an UpdateSigningKeys callback decides: keys to add, keys
// whose retirement time to set, and kids to delete.
type KeyChange struct {
	Add    []SigningKey
	Retire map[string]time.Time
	Delete []string
}

// UpdateSigningKeys reads the key set and applies the change that decide
// returns, atomically with respect to every other process sharing the
// database: on PostgreSQL the transaction holds an advisory lock, on SQLite
// the write lock (BEGIN IMMEDIATE). Two processes deciding to rotate at the
// same moment therefore run one after the other, and the second sees the
// first's new key (the compare-and-swap of dex's UpdateKeys).
func (s *Store) UpdateSigningKeys(ctx context.Context, decide func(current []SigningKey) (KeyChange, error)) error {
	return s.WithTx(ctx, func(ctx context.Context) error {
		db := s.conn(ctx)
		if s.dialect == Postgres {
			// 0x6f61757468 is "oauth" in ASCII: an arbitrary, documented lock id.
			if err := db.Exec("SELECT pg_advisory_xact_lock(?)", int64(0x6f61757468)).Error; err != nil {
				return translate("lock signing keys", err)
			}
		}
		var current []SigningKey
		if err := db.Order("activates_at, kid").Find(&current).Error; err != nil {
			return translate("list signing keys", err)
		}
		change, err := decide(current)
		if err != nil {
			return err
		}
		for i := range change.Add {
			if change.Add[i].CreatedAt.IsZero() {
				change.Add[i].CreatedAt = s.now()
			}
			k := change.Add[i]
			k.CreatedAt, k.ActivatesAt, k.RetiresAt = k.CreatedAt.UTC(), k.ActivatesAt.UTC(), utc(k.RetiresAt)
			if err := db.Create(&k).Error; err != nil {
				return translate("add signing key", err)
			}
		}
		for kid, at := range change.Retire {
			if err := db.Model(&SigningKey{}).Where("kid = ?", kid).Update("retires_at", at.UTC()).Error; err != nil {
				return translate("retire signing key", err)
			}
		}
		if len(change.Delete) > 0 {
			if err := db.Where("kid IN ?", change.Delete).Delete(&SigningKey{}).Error; err != nil {
				return translate("delete signing keys", err)
			}
		}
		return nil
	})
}
