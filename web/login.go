package web

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/oauthd/oauthd/accounts"
)

const (
	// Limits on what a sign-in form may carry. Longer input is answered
	// like a wrong password without hashing anything: no account has it.
	maxUsernameBytes = 256
	maxPasswordBytes = 1024
	// maxReturnTo bounds return_to. It carries the sealed pending
	// authorization request (oauth accepts up to 16 KiB of it), escaped.
	maxReturnTo = 32 << 10
	// maxFormBytes bounds the body of every form we accept.
	maxFormBytes = 128 << 10
)

// badCredentials is the one answer to an unknown username and a wrong
// password, so the page does not tell which usernames exist.
const badCredentials = "Wrong username or password."

type loginPage struct {
	layout
	Username string
	ReturnTo string
	Error    string
}

// loginPage shows the sign-in form. It is shown even to a signed-in
// person: oauth sends prompt=login and max_age requests here to sign in
// again.
func (s *Site) loginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hint := q.Get("login_hint")
	if len(hint) > maxUsernameBytes {
		hint = ""
	}
	s.showLogin(w, r, http.StatusOK, hint, safeReturnTo(q.Get("return_to")), "")
}

func (s *Site) showLogin(w http.ResponseWriter, r *http.Request, status int, username, returnTo, msg string) {
	l := s.layout("Sign in")
	l.CSRF = s.csrfToken(w, r)
	s.render(w, r, status, "login", loginPage{layout: l, Username: username, ReturnTo: returnTo, Error: msg})
}

// loginSubmit checks the credentials and starts a browser session.
func (s *Site) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	if !s.CheckCSRF(r) {
		s.csrfFailed(w, r)
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	returnTo := safeReturnTo(r.PostForm.Get("return_to"))
	if len(username) > maxUsernameBytes {
		username = ""
	}
	if username == "" || password == "" || len(password) > maxPasswordBytes {
		s.showLogin(w, r, http.StatusUnauthorized, username, returnTo, badCredentials)
		return
	}
	u, err := s.auth.Authenticate(r.Context(), username, password)
	switch {
	case errors.Is(err, accounts.ErrBadCredentials):
		s.showLogin(w, r, http.StatusUnauthorized, username, returnTo, badCredentials)
		return
	case err != nil:
		// Never "wrong password" when the check could not be made.
		s.fail(w, r, "sign in: check credentials", err)
		return
	}
	if err := s.startSession(w, r, u.ID); err != nil {
		s.fail(w, r, "sign in: start browser session", err)
		return
	}
	if returnTo == "" {
		returnTo = PathAccountSessions
	}
	s.redirect(w, returnTo)
}

// parseForm reads a POSTed form of bounded size, answering the request
// itself (and returning false) when it cannot.
func (s *Site) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.RenderError(w, r, http.StatusRequestEntityTooLarge, "Too much data", "The form sent more data than this page accepts.")
			return false
		}
		s.RenderError(w, r, http.StatusBadRequest, "Bad request", "The form could not be read. Go back, reload the page and try again.")
		return false
	}
	return true
}

// safeReturnTo returns p if it is a path on this server, else "". Only a
// path that starts with exactly one "/" is kept: "//host" and "/\host"
// are other hosts to a browser, and browsers drop tabs and newlines from
// URLs and read "\" as "/", so no control byte or backslash is allowed
// anywhere (RFC 9700 §4.11, no open redirector).
func safeReturnTo(p string) string {
	if p == "" || len(p) > maxReturnTo || p[0] != '/' || (len(p) > 1 && (p[1] == '/' || p[1] == '\\')) {
		return ""
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return ""
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	return p
}
