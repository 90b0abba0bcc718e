package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/oauthd/oauthd/accounts"
	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/storage"
)

// userCreator is what the admin API needs to register people.
type userCreator interface {
	Create(ctx context.Context, in accounts.NewUser) (*storage.User, error)
}

// newUser is the body of POST /admin/users.
type newUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
	Name     string `json:"name"`
}

// userView is a user as the admin API shows it: never the password hash.
type userView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email,omitempty"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// createUser serves POST /admin/users: 201 with the user, 409 when the
// (normalized) username is taken, 400 for invalid input.
func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var in newUser
	if !decode(w, r, &in) {
		return
	}
	u, err := a.Users.Create(r.Context(), accounts.NewUser{Username: in.Username, Password: in.Password, Email: in.Email, Name: in.Name})
	var inv *accounts.InvalidError
	switch {
	case errors.As(err, &inv):
		writeError(w, http.StatusBadRequest, "invalid_request", inv.Msg)
	case errors.Is(err, accounts.ErrUsernameTaken):
		writeError(w, http.StatusConflict, "username_taken", "A user with that username already exists.")
	case err != nil:
		a.fail(w, r, err)
	default:
		httpx.WriteJSON(w, http.StatusCreated, userView{ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name, CreatedAt: u.CreatedAt})
	}
}
