package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/storage"
)

// sessionStore is what the admin API needs to list and revoke grant
// sessions (*storage.Store).
type sessionStore interface {
	GetUser(ctx context.Context, id string) (*storage.User, error)
	ListActiveGrantSessions(ctx context.Context, userID string, now time.Time) ([]storage.GrantSession, error)
	RevokeGrantSession(ctx context.Context, id, reason string, now time.Time) error
	RevokeUserGrantSessions(ctx context.Context, userID, reason string, now time.Time) (int64, error)
}

// sessionView is a grant session as the admin API shows it. ID is the sid
// claim of the tokens issued under it; ExpiresAt is the earlier of the idle
// and the absolute expiry. Times are UTC.
type sessionView struct {
	ID         string    `json:"id"`
	ClientID   string    `json:"client_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Scope      string    `json:"scope"`
}

func toSessionView(g *storage.GrantSession) sessionView {
	exp := g.IdleExpiresAt
	if g.AbsoluteExpiresAt.Before(exp) {
		exp = g.AbsoluteExpiresAt
	}
	return sessionView{
		ID:         g.ID,
		ClientID:   g.ClientID,
		CreatedAt:  g.CreatedAt.UTC(),
		LastUsedAt: g.LastUsedAt.UTC(),
		ExpiresAt:  exp.UTC(),
		Scope:      g.Scope,
	}
}

// clock returns the current time (a.now in tests).
func (a *API) clock() time.Time {
	if a.now != nil {
		return a.now().UTC()
	}
	return time.Now().UTC()
}

// user answers 404 (and false) when the path's user is unknown, or the
// storage failure.
func (a *API) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := mux.Vars(r)["id"]
	if _, err := a.Sessions.GetUser(r.Context(), id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			writeError(w, http.StatusNotFound, "not_found", "No user with that id.")
		} else {
			a.fail(w, r, err)
		}
		return "", false
	}
	return id, true
}

// listUserSessions serves GET /admin/users/{id}/sessions: the user's live
// grant sessions, newest first ([] when there are none).
func (a *API) listUserSessions(w http.ResponseWriter, r *http.Request) {
	id, ok := a.user(w, r)
	if !ok {
		return
	}
	gs, err := a.Sessions.ListActiveGrantSessions(r.Context(), id, a.clock())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]sessionView, 0, len(gs))
	for i := range gs {
		out = append(out, toSessionView(&gs[i]))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// revokeUserSessions serves DELETE /admin/users/{id}/sessions: every grant
// session of the user ends, with its refresh tokens. 204 even when there
// was none.
func (a *API) revokeUserSessions(w http.ResponseWriter, r *http.Request) {
	id, ok := a.user(w, r)
	if !ok {
		return
	}
	n, err := a.Sessions.RevokeUserGrantSessions(r.Context(), id, storage.ReasonAdmin, a.clock())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.Logger.InfoContext(r.Context(), "admin revoked the grant sessions of a user", "user_id", id, "sessions", n)
	w.WriteHeader(http.StatusNoContent)
}

// revokeSession serves DELETE /admin/sessions/{sid}: the grant session ends,
// with its refresh tokens. Revoking an ended session again answers 204 and
// keeps its first revocation; an unknown sid answers 404.
func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) {
	sid := mux.Vars(r)["sid"]
	err := a.Sessions.RevokeGrantSession(r.Context(), sid, storage.ReasonAdmin, a.clock())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "No grant session with that id.")
	case err != nil:
		a.fail(w, r, err)
	default:
		a.Logger.InfoContext(r.Context(), "admin revoked a grant session", "sid", sid)
		w.WriteHeader(http.StatusNoContent)
	}
}
