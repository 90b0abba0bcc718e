package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/oauthd/oauthd/storage"
)

// sessionRow is one app the person is signed in to, as the account page
// shows it.
type sessionRow struct {
	ID       string
	Client   string
	Created  timeView
	LastUsed timeView
	Expires  timeView
	Device   string
	IP       string
}

// timeView is a time for people plus its machine-readable form.
type timeView struct{ Text, ISO string }

func viewTime(t time.Time) timeView {
	t = t.UTC()
	return timeView{Text: t.Format("2 Jan 2006, 15:04 UTC"), ISO: t.Format(time.RFC3339)}
}

type accountPage struct {
	layout
	Username string
	Sessions []sessionRow
	Revoke   string
	Logout   string
}

// accountPage lists the user's active grant sessions, each with a form to
// end it.
func (s *Site) accountPage(w http.ResponseWriter, r *http.Request) {
	userID, _, ok, err := s.SignedIn(r)
	if err != nil {
		s.fail(w, r, "account: load browser session", err)
		return
	}
	if !ok {
		s.redirect(w, s.LoginURL(PathAccountSessions, ""))
		return
	}
	ctx := r.Context()
	u, err := s.store.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		// The account was deleted under a live browser session.
		if _, err := s.SignOut(w, r); err != nil {
			s.fail(w, r, "account: sign out deleted user", err)
			return
		}
		s.redirect(w, s.LoginURL(PathAccountSessions, ""))
		return
	}
	if err != nil {
		s.fail(w, r, "account: load user", err)
		return
	}
	now := s.now()
	grants, err := s.store.ListActiveGrantSessions(ctx, userID, now)
	if err != nil {
		s.fail(w, r, "account: list grant sessions", err)
		return
	}
	names := map[string]string{}
	rows := make([]sessionRow, 0, len(grants))
	for _, g := range grants {
		name, seen := names[g.ClientID]
		if !seen {
			c, err := s.store.GetClient(ctx, g.ClientID)
			switch {
			case err == nil && c.Name != "":
				name = c.Name
			case err == nil || errors.Is(err, storage.ErrNotFound):
				name = g.ClientID // unnamed or deleted client
			default:
				s.fail(w, r, "account: load client", err)
				return
			}
			names[g.ClientID] = name
		}
		expires := g.IdleExpiresAt
		if g.AbsoluteExpiresAt.Before(expires) {
			expires = g.AbsoluteExpiresAt
		}
		rows = append(rows, sessionRow{
			ID:       g.ID,
			Client:   name,
			Created:  viewTime(g.CreatedAt),
			LastUsed: viewTime(g.LastUsedAt),
			Expires:  viewTime(expires),
			Device:   describeDevice(g.UserAgent),
			IP:       g.IP,
		})
	}
	l := s.layout("Your apps")
	l.Wide = true
	l.CSRF = s.csrfToken(w, r)
	s.render(w, r, http.StatusOK, "account", accountPage{
		layout: l, Username: u.Username, Sessions: rows, Revoke: pathRevoke, Logout: pathLogout,
	})
}

// revokeSession ends one of the user's grant sessions: its refresh tokens
// stop working at once and its access tokens introspect inactive.
func (s *Site) revokeSession(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	if !s.CheckCSRF(r) {
		s.csrfFailed(w, r)
		return
	}
	userID, _, ok, err := s.SignedIn(r)
	if err != nil {
		s.fail(w, r, "revoke: load browser session", err)
		return
	}
	if !ok {
		s.redirect(w, s.LoginURL(PathAccountSessions, ""))
		return
	}
	ctx := r.Context()
	id := r.PostForm.Get("session_id")
	var g *storage.GrantSession
	if id != "" {
		g, err = s.store.GetGrantSession(ctx, id)
	}
	if id == "" || errors.Is(err, storage.ErrNotFound) || (err == nil && g.UserID != userID) {
		// Someone else's session answers like an unknown one: the page
		// does not confirm which session ids exist.
		s.RenderError(w, r, http.StatusNotFound, "App session not found",
			"It may have ended already. Go back to your account page to see the apps you are signed in to.")
		return
	}
	if err != nil {
		s.fail(w, r, "revoke: load grant session", err)
		return
	}
	if err := s.store.RevokeGrantSession(ctx, g.ID, storage.ReasonUser, s.now()); err != nil {
		s.fail(w, r, "revoke: revoke grant session", err)
		return
	}
	// Forget the consent too, so the app has to ask again next time
	// instead of silently getting a new session.
	if err := s.store.DeleteConsent(ctx, userID, g.ClientID); err != nil {
		s.fail(w, r, "revoke: delete consent", err)
		return
	}
	s.redirect(w, PathAccountSessions)
}

// logout ends the browser session from the account page.
func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	if !s.CheckCSRF(r) {
		s.csrfFailed(w, r)
		return
	}
	if _, err := s.SignOut(w, r); err != nil {
		s.fail(w, r, "sign out", err)
		return
	}
	s.redirect(w, PathLogin)
}
