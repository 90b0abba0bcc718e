package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/storage"
)

// store is what accounts needs from persistence.
type store interface {
	CreateUser(ctx context.Context, u *storage.User) error
	GetUserByUsername(ctx context.Context, username string) (*storage.User, error)
}

// Errors callers map to answers.
var (
	// ErrUsernameTaken: a user with the same normalized username exists.
	ErrUsernameTaken = errors.New("accounts: username already taken")
	// ErrBadCredentials: unknown username or wrong password; the two are
	// deliberately indistinguishable.
	ErrBadCredentials = errors.New("accounts: bad credentials")
)

// InvalidError is a user-input problem, with a message for the person.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Accounts creates users and checks passwords.
type Accounts struct {
	store  store
	params Params
	// hashing bounds concurrent argon2id computations: each holds
	// MemoryKiB of memory, and they are reachable without authentication.
	hashing chan struct{}
	// dummy is a hash of a random password, checked when the username is
	// unknown so that case costs the same time as a wrong password.
	dummy string
}

// New returns the accounts service. maxConcurrent bounds simultaneous
// password hashes (memory: maxConcurrent × p.MemoryKiB).
func New(st store, p Params, maxConcurrent int) (*Accounts, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	dummy, err := hash(secret.Generate(16), p)
	if err != nil {
		return nil, err
	}
	return &Accounts{store: st, params: p, hashing: make(chan struct{}, maxConcurrent), dummy: dummy}, nil
}

var folder = cases.Fold()

// NormalizeUsername returns the form usernames are stored and compared in:
// Unicode NFC, then case folded, so "Alice", "ALICE" and "alice" are one
// user. It refuses empty names, spaces at either end, control and
// format characters, and names over 128 characters.
func NormalizeUsername(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", invalid("the username is not valid UTF-8")
	}
	if name == "" || strings.TrimSpace(name) != name {
		return "", invalid("the username must not be empty or start or end with a space")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", invalid("the username contains an invisible or control character")
		}
	}
	n := norm.NFC.String(folder.String(norm.NFC.String(name)))
	if utf8.RuneCountInString(n) > 128 {
		return "", invalid("the username is longer than 128 characters")
	}
	return n, nil
}

// NewUser is what creating a user takes.
type NewUser struct {
	Username string
	Password string
	Email    string
	Name     string
}

// Create validates and stores a new user with an argon2id password hash.
func (a *Accounts) Create(ctx context.Context, in NewUser) (*storage.User, error) {
	username, err := NormalizeUsername(in.Username)
	if err != nil {
		return nil, err
	}
	if err := checkPassword(in.Password); err != nil {
		return nil, err
	}
	if in.Email != "" && (len(in.Email) > 254 || !strings.Contains(in.Email, "@") || strings.ContainsAny(in.Email, " \t\r\n<>")) {
		return nil, invalid("the email address is not valid")
	}
	if utf8.RuneCountInString(in.Name) > 200 || strings.IndexFunc(in.Name, unicode.IsControl) >= 0 {
		return nil, invalid("the name must be at most 200 printable characters")
	}
	h, err := a.hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	u := &storage.User{ID: newUserID(), Username: username, PasswordHash: h, Email: in.Email, Name: in.Name}
	if err := a.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, ErrUsernameTaken
		}
		return nil, err
	}
	return u, nil
}

// Authenticate returns the user whose username and password match.
// Unknown usernames and wrong passwords both answer ErrBadCredentials after
// the same amount of hashing work.
func (a *Accounts) Authenticate(ctx context.Context, username, password string) (*storage.User, error) {
	norm, nerr := NormalizeUsername(username)
	var u *storage.User
	encoded := a.dummy
	if nerr == nil && len(password) <= maxPasswordBytes {
		found, err := a.store.GetUserByUsername(ctx, norm)
		switch {
		case err == nil:
			u, encoded = found, found.PasswordHash
		case !errors.Is(err, storage.ErrNotFound):
			return nil, err
		}
	}
	if len(password) > maxPasswordBytes {
		password = password[:maxPasswordBytes] // still hash: same time as any failure
	}
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	verr := verify(encoded, password)
	a.release()
	if u == nil || verr != nil {
		return nil, ErrBadCredentials
	}
	return u, nil
}

func checkPassword(pw string) error {
	switch {
	case len(pw) > maxPasswordBytes:
		return invalid("the password is longer than %d bytes", maxPasswordBytes)
	case utf8.RuneCountInString(pw) < minPasswordRunes:
		return invalid("the password must have at least %d characters", minPasswordRunes)
	case !utf8.ValidString(pw):
		return invalid("the password is not valid UTF-8")
	}
	return nil
}

func (a *Accounts) hash(ctx context.Context, pw string) (string, error) {
	if err := a.acquire(ctx); err != nil {
		return "", err
	}
	defer a.release()
	return hash(pw, a.params)
}

func (a *Accounts) acquire(ctx context.Context) error {
	select {
	case a.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Accounts) release() { <-a.hashing }

// newUserID returns 128 random bits, base64url, with a "u_" prefix: 24
// characters, so a user id (a token's sub) never equals a generated
// client_id (22 characters).
func newUserID() string { return "u_" + secret.Generate(16) }
