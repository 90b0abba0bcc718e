package storage

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"
)

// AuthorizationCode is one authorization code, known only by its HMAC
// signature: the code itself is never stored. A used code keeps its row
// (UsedAt set) until it expires, so that a replay is recognised as reuse
// rather than as an unknown code.
type AuthorizationCode struct {
	Signature string `gorm:"column:signature;primaryKey"`
	// SessionID is the grant session the exchange will create; that row
	// does not exist yet, so there is no foreign key.
	SessionID string `gorm:"column:session_id"`
	ClientID  string `gorm:"column:client_id"`
	// RequestData is the caller's serialized request; storage does not look
	// inside.
	RequestData []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
	// UsedAt is when the code was exchanged (InvalidateAuthorizationCode),
	// nil while it is unused.
	UsedAt *time.Time
}

// TableName pins the table name.
func (AuthorizationCode) TableName() string { return "authorization_codes" }

func (c *AuthorizationCode) row() *AuthorizationCode {
	r := *c
	if r.RequestData == nil {
		r.RequestData = []byte{}
	}
	r.CreatedAt, r.ExpiresAt, r.UsedAt = r.CreatedAt.UTC(), r.ExpiresAt.UTC(), utc(r.UsedAt)
	return &r
}

// CreateAuthorizationCode inserts c. CreatedAt defaults to the store's
// clock. ErrConflict when the signature exists.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c *AuthorizationCode) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	r := c.row()
	return translate("create authorization code", s.execWrite(ctx, insertAuthorizationCode,
		r.Signature, r.SessionID, r.ClientID, r.RequestData, r.CreatedAt, r.ExpiresAt, r.UsedAt))
}

const insertAuthorizationCode = `INSERT INTO authorization_codes (signature, session_id, client_id, request_data, created_at, expires_at, used_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`

// GetAuthorizationCode loads a code by signature, used or not (the caller
// checks UsedAt, and expiry). ErrNotFound when unknown.
func (s *Store) GetAuthorizationCode(ctx context.Context, signature string) (*AuthorizationCode, error) {
	if inTx(ctx) {
		var c AuthorizationCode
		if err := s.conn(ctx).Where("signature = ?", signature).Take(&c).Error; err != nil {
			return nil, translate("get authorization code", err)
		}
		return &c, nil
	}
	// Every code exchange reads its code: on PostgreSQL in a group with the
	// exchanges of the moment (groupedreads.go), on SQLite a prepared
	// statement, without the ORM.
	if s.codes != nil {
		c, err := s.codes.askOne(ctx, signature)
		if err == nil && c == nil {
			err = translate("get authorization code", ErrNotFound)
		}
		return c, err
	}
	stmt, err := s.prepared(ctx, getAuthorizationCode)
	if err != nil {
		return nil, err
	}
	c := AuthorizationCode{Signature: signature}
	var created, expires, used sqlTime
	err = stmt.QueryRowContext(ctx, signature).Scan(&c.SessionID, &c.ClientID, &c.RequestData, &created, &expires, &used)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return nil, translate("get authorization code", err)
	}
	c.CreatedAt, c.ExpiresAt = created.Time, expires.Time
	if !used.Time.IsZero() {
		c.UsedAt = &used.Time
	}
	return &c, nil
}

const getAuthorizationCode = `SELECT session_id, client_id, request_data, created_at, expires_at, used_at
FROM authorization_codes WHERE signature = $1`

// InvalidateAuthorizationCode marks the code used at now. The update is
// conditional on the code being unused, so of concurrent calls exactly one
// succeeds; the others get ErrConflict (as does any later call). ErrNotFound
// when the code is unknown.
func (s *Store) InvalidateAuthorizationCode(ctx context.Context, signature string, now time.Time) error {
	db := s.conn(ctx)
	res := db.Exec("UPDATE authorization_codes SET used_at = ? WHERE signature = ? AND used_at IS NULL", now.UTC(), signature)
	if res.Error != nil {
		return translate("invalidate authorization code", res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	var n int64
	if err := db.Model(&AuthorizationCode{}).Where("signature = ?", signature).Count(&n).Error; err != nil {
		return translate("invalidate authorization code", err)
	}
	if n == 0 {
		return translate("invalidate authorization code", ErrNotFound)
	}
	return translate("invalidate authorization code: already used", ErrConflict)
}

// OIDCRequest is the OpenID Connect part of an authorization request, keyed
// by CodeHash, the SHA-256 of the raw authorization code computed by the
// caller (storage stores whatever key it is given).
type OIDCRequest struct {
	CodeHash    string `gorm:"column:code_hash;primaryKey"`
	RequestData []byte
	ExpiresAt   time.Time
}

// TableName pins the table name.
func (OIDCRequest) TableName() string { return "oidc_requests" }

// CreateOIDCRequest inserts r. ErrConflict when the key exists.
func (s *Store) CreateOIDCRequest(ctx context.Context, r *OIDCRequest) error {
	row := OIDCRequest{CodeHash: r.CodeHash, RequestData: nonNil(r.RequestData), ExpiresAt: r.ExpiresAt.UTC()}
	return translate("create oidc request", s.writing(ctx, func(db *gorm.DB) error { return db.Create(&row).Error }))
}

// GetOIDCRequest loads the OpenID Connect request under codeHash.
// ErrNotFound when there is none. Expiry is not checked here.
func (s *Store) GetOIDCRequest(ctx context.Context, codeHash string) (*OIDCRequest, error) {
	var r OIDCRequest
	if err := s.conn(ctx).Where("code_hash = ?", codeHash).Take(&r).Error; err != nil {
		return nil, translate("get oidc request", err)
	}
	return &r, nil
}

// DeleteOIDCRequest deletes the OpenID Connect request under codeHash.
// ErrNotFound when there is none.
func (s *Store) DeleteOIDCRequest(ctx context.Context, codeHash string) error {
	var res *gorm.DB
	if err := s.writing(ctx, func(db *gorm.DB) error {
		res = db.Where("code_hash = ?", codeHash).Delete(&OIDCRequest{})
		return nil
	}); err != nil {
		return translate("delete oidc request", err)
	}
	return deleted(res, "delete oidc request")
}

// deleted maps the result of a DELETE by primary key: ErrNotFound when it
// deleted nothing.
func deleted(res *gorm.DB, op string) error {
	if res.Error != nil {
		return translate(op, res.Error)
	}
	if res.RowsAffected == 0 {
		return translate(op, ErrNotFound)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
