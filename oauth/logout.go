package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/storage"
)

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//
// GET /oauth2/logout takes id_token_hint, post_logout_redirect_uri, state
// and client_id. The post-logout URI must be registered for the client the
// hint (or client_id) names, exactly, or the person stays here: the logout
// endpoint is never an open redirector. When the hint proves who is leaving
// and that is the person signed in here (or nobody is), the logout happens
// at once; otherwise the person confirms on a page (POST, CSRF-checked),
// as the specification requires. Logging out signs the browser out and
// revokes the grant session the hint names (its sid): its refresh tokens
// fail and its access tokens introspect inactive.

type pendingLogout struct {
	SessionID   string `json:"sid,omitempty"`
	Subject     string `json:"sub,omitempty"`
	RedirectURI string `json:"uri,omitempty"`
	State       string `json:"state,omitempty"`
	Expires     int64  `json:"e"`
}

const (
	purposeLogout = "oauthd pending logout v1"
	logoutParam   = "logout"
)

type idTokenHint struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	SessionID string   `json:"sid"`
}

func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	redirectHeaders(w)
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil && httpx.IsTooLarge(err) {
			p.browser.RenderError(w, r, http.StatusRequestEntityTooLarge, "Invalid request", "The form is too large.")
			return
		}
		if !p.browser.CheckCSRF(r) {
			p.browser.RenderError(w, r, http.StatusForbidden, "Request refused",
				"This form has expired or was not sent from this site. Go back and try again.")
			return
		}
		pl, err := p.openLogout(r.PostForm.Get(logoutParam))
		if err != nil {
			p.browser.RenderError(w, r, http.StatusBadRequest, "This sign-out link has expired", "Start signing out again.")
			return
		}
		p.finishLogout(w, r, pl)
		return
	}
	q := r.URL.Query()
	if dup := duplicateParam(q); dup != "" {
		p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid sign-out request",
			"The parameter '"+sanitizeDescription(dup)+"' was sent more than once.")
		return
	}
	ctx := r.Context()
	pl := &pendingLogout{State: q.Get("state")}
	clientID := q.Get("client_id")
	var hint *idTokenHint
	if raw := q.Get("id_token_hint"); raw != "" {
		h, err := p.parseIDTokenHint(r, raw)
		if err != nil {
			p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid sign-out request", "The id_token_hint is not an ID token issued here.")
			return
		}
		if clientID != "" && !slices.Contains(h.Audience, clientID) {
			p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid sign-out request", "client_id does not match the id_token_hint.")
			return
		}
		if clientID == "" && len(h.Audience) > 0 {
			clientID = h.Audience[0]
		}
		hint, pl.SessionID, pl.Subject = h, h.SessionID, h.Subject
	}
	clientName := ""
	if clientID != "" {
		c, err := p.clients.get(ctx, clientID)
		switch {
		case errors.Is(err, errUnavailable):
			p.browser.RenderError(w, r, http.StatusServiceUnavailable, "Something went wrong", "Try again in a moment.")
			return
		case err == nil:
			clientName = c.rec.Name
			if uri := q.Get("post_logout_redirect_uri"); uri != "" {
				if !slices.Contains(c.rec.PostLogoutRedirectURIs, uri) {
					p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid sign-out request",
						"The post_logout_redirect_uri is not registered for this application.")
					return
				}
				pl.RedirectURI = uri
			}
		}
	}
	if q.Get("post_logout_redirect_uri") != "" && pl.RedirectURI == "" {
		p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid sign-out request",
			"A post_logout_redirect_uri needs an id_token_hint or client_id of the application it is registered for.")
		return
	}
	userID, _, signedIn, err := p.browser.SignedIn(r)
	if err != nil {
		p.browser.RenderError(w, r, http.StatusServiceUnavailable, "Something went wrong", "Try again in a moment.")
		return
	}
	if hint != nil && signedIn && userID == hint.Subject {
		// The hint proves who is leaving, and it is the person signed in
		// here: no need to ask, provided it names a grant of theirs that is
		// still live (an old, leaked ID token does not log anyone out
		// without a question).
		gs, err := p.store.GetGrantSession(ctx, hint.SessionID)
		switch {
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			p.browser.RenderError(w, r, http.StatusServiceUnavailable, "Something went wrong", "Try again in a moment.")
			return
		case err == nil && gs.UserID == hint.Subject && gs.Live(time.Now()):
			p.finishLogout(w, r, pl)
			return
		}
	}
	pl.Expires = time.Now().Add(pendingTTL).Unix()
	p.browser.RenderLogout(w, r, clientName, PathLogout, url.Values{logoutParam: {p.seal.SealJSON(purposeLogout, pl)}})
}

func (p *Provider) finishLogout(w http.ResponseWriter, r *http.Request, pl *pendingLogout) {
	ctx := r.Context()
	if pl.SessionID != "" {
		// The grant first: if it cannot be ended, the person must not be
		// told they are signed out.
		gs, err := p.store.GetGrantSession(ctx, pl.SessionID)
		if err == nil && gs.UserID == pl.Subject {
			err = p.store.RevokeGrantSession(ctx, pl.SessionID, storage.ReasonLogout, time.Now())
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.logger.ErrorContext(ctx, "revoke grant session at logout failed", "err", err)
			p.browser.RenderError(w, r, http.StatusServiceUnavailable, "Something went wrong", "You are not signed out yet. Try again in a moment.")
			return
		}
	}
	if _, err := p.browser.SignOut(w, r); err != nil {
		p.logger.ErrorContext(ctx, "sign out failed", "err", err)
		p.browser.RenderError(w, r, http.StatusServiceUnavailable, "Something went wrong", "Try again in a moment.")
		return
	}
	if pl.RedirectURI == "" {
		p.browser.RenderSignedOut(w, r)
		return
	}
	u, err := url.Parse(pl.RedirectURI)
	if err != nil {
		p.browser.RenderSignedOut(w, r)
		return
	}
	if pl.State != "" {
		qv := u.Query()
		qv.Set("state", pl.State)
		u.RawQuery = qv.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (p *Provider) openLogout(raw string) (*pendingLogout, error) {
	var pl pendingLogout
	if err := p.seal.OpenJSON(purposeLogout, raw, 8<<10, &pl); err != nil {
		return nil, err
	}
	return &pl, nil
}

func (pl *pendingLogout) expiresAt() int64 { return pl.Expires }

// parseIDTokenHint verifies an ID token of ours; an expired one is fine
// (the usual case at logout).
func (p *Provider) parseIDTokenHint(r *http.Request, raw string) (*idTokenHint, error) {
	if len(raw) > maxTokenLength || strings.Count(raw, ".") != 2 {
		return nil, errTokenInvalid
	}
	v, err := p.jwtKeys.Verify(r.Context(), raw)
	if err != nil || v.Typ == "at+jwt" {
		return nil, errTokenInvalid
	}
	var h idTokenHint
	if err := json.Unmarshal(v.Payload, &h); err != nil || h.Issuer != p.cfg.Issuer || h.Subject == "" {
		return nil, errTokenInvalid
	}
	return &h, nil
}
