package storage

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Consent is a remembered "allow" of a user for a client: the scopes it
// covers. One row per user and client; a new consent replaces the old one
// with the union of both scope sets.
type Consent struct {
	UserID    string `gorm:"column:user_id;primaryKey"`
	ClientID  string `gorm:"column:client_id;primaryKey"`
	Scope     string
	GrantedAt time.Time
}

// TableName pins the table name.
func (Consent) TableName() string { return "consents" }

// Covers reports whether the consent includes every scope in scopes.
func (c *Consent) Covers(scopes []string) bool {
	have := strings.Fields(c.Scope)
	for _, want := range scopes {
		found := false
		for _, h := range have {
			if h == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// GrantConsent records that userID allowed clientID scopes at now, adding
// them to any scopes allowed before.
func (s *Store) GrantConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error {
	return s.tx(ctx, "grant consent", func(ctx context.Context) error {
		db := s.conn(ctx)
		set := map[string]bool{}
		var old Consent
		err := db.Where("user_id = ? AND client_id = ?", userID, clientID).Take(&old).Error
		switch {
		case err == nil:
			for _, sc := range strings.Fields(old.Scope) {
				set[sc] = true
			}
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return translate("get consent", err)
		}
		for _, sc := range scopes {
			set[sc] = true
		}
		all := make([]string, 0, len(set))
		for sc := range set {
			all = append(all, sc)
		}
		sort.Strings(all)
		err = db.Exec("INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?, ?, ?, ?) "+
			"ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
			userID, clientID, strings.Join(all, " "), now.UTC()).Error
		return translate("grant consent", err)
	})
}

// GetConsent returns the remembered consent of userID for clientID;
// ErrNotFound when there is none.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (*Consent, error) {
	var c Consent
	if err := s.conn(ctx).Where("user_id = ? AND client_id = ?", userID, clientID).Take(&c).Error; err != nil {
		return nil, translate("get consent", err)
	}
	return &c, nil
}

// DeleteConsent forgets the consent of userID for clientID (no error when
// there is none).
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return translate("delete consent", s.conn(ctx).Exec("DELETE FROM consents WHERE user_id = ? AND client_id = ?", userID, clientID).Error)
}
