package storage

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// Client is a registered OAuth 2.0 client (RFC 7591 metadata plus oauthd's
// flags). Validation of the metadata is the caller's job; storage keeps what
// it is given.
type Client struct {
	ID   string `gorm:"primaryKey"`
	Name string
	// SecretHash is the keyed hash of the client secret; empty for public
	// clients (token_endpoint_auth_method "none").
	SecretHash string
	// PreviousSecretHash stays valid until PreviousSecretExpiresAt after a
	// secret rotation, so deployments can roll the new secret out.
	PreviousSecretHash      string
	PreviousSecretExpiresAt *time.Time
	RedirectURIs            []string `gorm:"column:redirect_uris;serializer:json"`
	PostLogoutRedirectURIs  []string `gorm:"column:post_logout_redirect_uris;serializer:json"`
	GrantTypes              []string `gorm:"serializer:json"`
	ResponseTypes           []string `gorm:"serializer:json"`
	// Scope is the space-separated list of scopes the client may request.
	Scope                   string
	Audience                []string `gorm:"serializer:json"`
	TokenEndpointAuthMethod string
	SkipConsent             bool
	AllowIntrospection      bool
	// RequirePAR: authorization requests must be pushed (RFC 9126 §6).
	RequirePAR bool `gorm:"column:require_pushed_authorization_requests"`
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName pins the table name independent of GORM's naming rules.
func (Client) TableName() string { return "clients" }

// row returns the copy of c that is written: nil arrays become empty ones
// (the columns are NOT NULL JSON arrays, and GORM's JSON serializer writes a
// nil slice as NULL), and times are UTC.
func (c *Client) row() *Client {
	r := *c
	for _, a := range []*[]string{&r.RedirectURIs, &r.PostLogoutRedirectURIs, &r.GrantTypes, &r.ResponseTypes, &r.Audience} {
		if *a == nil {
			*a = []string{}
		}
	}
	r.PreviousSecretExpiresAt = utc(r.PreviousSecretExpiresAt)
	return &r
}

// CreateClient inserts c. ErrConflict when the id is taken.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	now := s.now()
	c.CreatedAt, c.UpdatedAt = now, now
	return translate("create client", s.conn(ctx).Create(c.row()).Error)
}

// GetClient loads one client. ErrNotFound when unknown.
func (s *Store) GetClient(ctx context.Context, id string) (*Client, error) {
	var c Client
	if err := s.conn(ctx).Where("id = ?", id).Take(&c).Error; err != nil {
		return nil, translate("get client", err)
	}
	return &c, nil
}

// ListClients returns every client ordered by creation time, then id.
func (s *Store) ListClients(ctx context.Context) ([]Client, error) {
	var cs []Client
	if err := s.conn(ctx).Order("created_at, id").Find(&cs).Error; err != nil {
		return nil, translate("list clients", err)
	}
	return cs, nil
}

// UpdateClient replaces every field of an existing client except its id and
// creation time. ErrNotFound when unknown.
func (s *Store) UpdateClient(ctx context.Context, c *Client) error {
	c.UpdatedAt = s.now()
	// UpdateColumns, not Updates: Updates would overwrite updated_at with
	// GORM's own clock, ignoring the store's (SetClock) and c.UpdatedAt.
	res := s.conn(ctx).Model(&Client{}).Where("id = ?", c.ID).Select("*").Omit("id", "created_at").UpdateColumns(c.row())
	if res.Error != nil {
		return translate("update client", res.Error)
	}
	if res.RowsAffected == 0 {
		return translate("update client", ErrNotFound)
	}
	return nil
}

// ModifyClient reads client id, lets change edit it, and writes it back, in
// one transaction holding the row's lock (SELECT ... FOR UPDATE on
// PostgreSQL, the database write lock on SQLite): concurrent changes to one
// client apply one after the other and none is lost. An error from change
// aborts without writing. ErrNotFound when unknown.
func (s *Store) ModifyClient(ctx context.Context, id string, change func(c *Client) error) (*Client, error) {
	var out *Client
	err := s.WithTx(ctx, func(ctx context.Context) error {
		var c Client
		q := s.conn(ctx)
		if s.dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Where("id = ?", id).Take(&c).Error; err != nil {
			return translate("get client", err)
		}
		if err := change(&c); err != nil {
			return err
		}
		c.ID = id
		if err := s.UpdateClient(ctx, &c); err != nil {
			return err
		}
		out = &c
		return nil
	})
	return out, err
}

// DeleteClient removes a client. ErrNotFound when unknown.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	res := s.conn(ctx).Where("id = ?", id).Delete(&Client{})
	if res.Error != nil {
		return translate("delete client", res.Error)
	}
	if res.RowsAffected == 0 {
		return translate("delete client", ErrNotFound)
	}
	return nil
}
