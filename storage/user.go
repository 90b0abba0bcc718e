package storage

import (
	"context"
	"time"
)

// User is a person who signs in. Username is the normalized form (the
// accounts package normalizes); PasswordHash is a self-describing argon2id
// string.
type User struct {
	ID            string `gorm:"primaryKey"`
	Username      string
	PasswordHash  string
	Email         string
	EmailVerified bool
	Name          string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TableName pins the table name.
func (User) TableName() string { return "users" }

// CreateUser inserts u. ErrConflict when the id or the username is taken.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	now := s.now()
	u.CreatedAt, u.UpdatedAt = now, now
	return translate("create user", s.conn(ctx).Create(u).Error)
}

// GetUser loads a user by id. ErrNotFound when unknown.
func (s *Store) GetUser(ctx context.Context, id string) (*User, error) {
	var u User
	if err := s.conn(ctx).Where("id = ?", id).Take(&u).Error; err != nil {
		return nil, translate("get user", err)
	}
	return &u, nil
}

// GetUserByUsername loads a user by normalized username. ErrNotFound when
// unknown.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (*User, error) {
	var u User
	if err := s.conn(ctx).Where("username = ?", username).Take(&u).Error; err != nil {
		return nil, translate("get user by username", err)
	}
	return &u, nil
}
