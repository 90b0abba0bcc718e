package storage

import (
	"context"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm/clause"
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
	now = now.UTC()
	return s.tx(ctx, "grant consent", func(ctx context.Context) error {
		db := s.conn(ctx)
		// Make sure the row exists, then lock it, so concurrent grants
		// merge one after the other instead of overwriting each other
		// (PostgreSQL runs read committed; SQLite's write lock already
		// serialises).
		if err := db.Exec("INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?, ?, '', ?) ON CONFLICT (user_id, client_id) DO NOTHING",
			userID, clientID, now).Error; err != nil {
			return translate("grant consent", err)
		}
		q := db
		if s.dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var old Consent
		if err := q.Where("user_id = ? AND client_id = ?", userID, clientID).Take(&old).Error; err != nil {
			return translate("grant consent", err)
		}
		set := map[string]bool{}
		for _, sc := range strings.Fields(old.Scope) {
			set[sc] = true
		}
		for _, sc := range scopes {
			set[sc] = true
		}
		all := make([]string, 0, len(set))
		for sc := range set {
			all = append(all, sc)
		}
		sort.Strings(all)
		err := db.Exec("UPDATE consents SET scope = ?, granted_at = ? WHERE user_id = ? AND client_id = ?",
			strings.Join(all, " "), now, userID, clientID).Error
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
