package storage

import (
	"context"
	"gorm.io/gorm"
	"time"
)

// PARRequest is one pushed authorization request, keyed by a hash of its
// request_uri computed by the caller. It is single-use: TakePAR reads and
// deletes it in one statement.
type PARRequest struct {
	RequestURIHash string `gorm:"column:request_uri_hash;primaryKey"`
	ClientID       string `gorm:"column:client_id"`
	// RequestData is the caller's serialized request, stripped by the
	// caller of credentials (client_secret, client_assertion, ...).
	RequestData []byte
	ExpiresAt   time.Time
}

// TableName pins the table name.
func (PARRequest) TableName() string { return "par_requests" }

// CreatePAR inserts p. ErrConflict when the hash exists.
func (s *Store) CreatePAR(ctx context.Context, p *PARRequest) error {
	row := PARRequest{RequestURIHash: p.RequestURIHash, ClientID: p.ClientID, RequestData: nonNil(p.RequestData), ExpiresAt: p.ExpiresAt.UTC()}
	return translate("create pushed authorization request", s.writing(ctx, func(db *gorm.DB) error { return db.Create(&row).Error }))
}

// TakePAR returns the pushed request under hash and deletes it, atomically
// (one DELETE ... RETURNING, on PostgreSQL and on SQLite >= 3.35): of
// concurrent calls at most one gets the request. ErrNotFound when there is
// none or it expired at or before now; an expired request is deleted too.
func (s *Store) TakePAR(ctx context.Context, hash string, now time.Time) (*PARRequest, error) {
	var rows []struct {
		ClientID    string
		RequestData []byte
		ExpiresAt   time.Time
		Live        bool
	}
	// The expiry is compared in SQL, where it is compared everywhere else,
	// rather than in Go on a value read back from a RETURNING clause.
	err := s.writing(ctx, func(db *gorm.DB) error {
		return db.Raw(
			"DELETE FROM par_requests WHERE request_uri_hash = ? "+
				"RETURNING client_id, request_data, expires_at, CASE WHEN expires_at > ? THEN 1 ELSE 0 END AS live",
			hash, now.UTC()).Scan(&rows).Error
	})
	if err != nil {
		return nil, translate("take pushed authorization request", err)
	}
	if len(rows) == 0 || !rows[0].Live {
		return nil, translate("take pushed authorization request", ErrNotFound)
	}
	r := rows[0]
	return &PARRequest{RequestURIHash: hash, ClientID: r.ClientID, RequestData: r.RequestData, ExpiresAt: r.ExpiresAt}, nil
}
