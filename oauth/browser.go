package oauth

import (
	"net/http"
	"net/url"
	"time"
)

// Browser is what the authorization, consent and logout endpoints need from
// the people-facing side of the server: the browser session (who is signed
// in here), CSRF protection and the pages. web.Site implements it and main
// passes it in; only standard-library types cross this seam, so oauth and
// web never import each other (docs/architecture.md).
type Browser interface {
	// SignedIn returns the user signed in at this browser and when they
	// last entered their password. ok is false when there is no live
	// browser session; err is a storage failure.
	SignedIn(r *http.Request) (userID string, authTime time.Time, ok bool, err error)

	// LoginURL is the sign-in page for this request. After a successful
	// sign-in the page redirects (303) to returnTo, a local path of this
	// server; loginHint pre-fills the username.
	LoginURL(returnTo, loginHint string) string

	// CheckCSRF reports whether the POSTed form r carries the CSRF token
	// that the page rendering the form (RenderConsent, RenderLogout) put
	// in it for this browser.
	CheckCSRF(r *http.Request) bool

	// RenderConsent shows the consent page: clientName asks for scopes
	// (raw scope names; the page words them). The form posts to action
	// with the hidden fields plus a CSRF token, and has two submit buttons
	// named "decision" with values "allow" and "deny".
	RenderConsent(w http.ResponseWriter, r *http.Request, clientName string, scopes []string, action string, hidden url.Values)

	// RenderLogout asks the person to confirm signing out (clientName may
	// be empty). The form posts to action with the hidden fields plus a
	// CSRF token and one submit button.
	RenderLogout(w http.ResponseWriter, r *http.Request, clientName string, action string, hidden url.Values)

	// RenderSignedOut says the person is signed out (logout without a
	// registered post_logout_redirect_uri).
	RenderSignedOut(w http.ResponseWriter, r *http.Request)

	// RenderError shows an error page with status; title and detail are
	// plain text for people, never internal error text.
	RenderError(w http.ResponseWriter, r *http.Request, status int, title, detail string)

	// SignOut ends the browser session of r, if any, and clears its
	// cookie. It returns the user that was signed in ("" if none).
	SignOut(w http.ResponseWriter, r *http.Request) (userID string, err error)
}
