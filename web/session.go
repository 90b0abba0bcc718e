package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/oauthd/oauthd/storage"
)

// randomBytes is the entropy of the session and CSRF cookies.
const randomBytes = 32

// maxUserAgent caps the user agent stored with a session.
const maxUserAgent = 512

// newCookieValue returns 32 random bytes, base64url without padding.
func newCookieValue() string {
	b := make([]byte, randomBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormed reports whether v can be a value we issued, so junk cookies
// never reach the database.
func wellFormed(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == randomBytes
}

// sessionHash is the browser_sessions key of a cookie value: the cookie
// itself is never stored, so a database dump signs nobody in.
func sessionHash(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(h[:])
}

// cookie builds one of our cookies with the attributes they all share.
// maxAge < 0 deletes it.
func (s *Site) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   s.secure,
		HttpOnly: true,
		// Lax, not Strict: the sign-in page is reached by redirects from
		// other sites (the client), which must carry the session.
		SameSite: http.SameSiteLaxMode,
	}
}

// cookieValue returns the value of our cookie name if it is well-formed.
func cookieValue(r *http.Request, name string) (string, bool) {
	c, err := r.Cookie(name)
	if err != nil || !wellFormed(c.Value) {
		return "", false
	}
	return c.Value, true
}

// SignedIn implements oauth.Browser.
func (s *Site) SignedIn(r *http.Request) (string, time.Time, bool, error) {
	b, err := s.browserSession(r)
	if err != nil || b == nil {
		return "", time.Time{}, false, err
	}
	return b.UserID, b.AuthTime, true, nil
}

// browserSession loads the live session of r's cookie; nil without error
// when there is none.
func (s *Site) browserSession(r *http.Request) (*storage.BrowserSession, error) {
	v, ok := cookieValue(r, s.sessionCk)
	if !ok {
		return nil, nil
	}
	b, err := s.store.GetBrowserSession(r.Context(), sessionHash(v), s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// startSession signs user in at this browser: it ends the browser's
// previous session, if any, and starts a new one under a fresh id (a
// session id planted before sign-in is never the one signed in: session
// fixation), then sets the cookie.
func (s *Site) startSession(w http.ResponseWriter, r *http.Request, userID string) error {
	now := s.now()
	if old, ok := cookieValue(r, s.sessionCk); ok {
		err := s.store.RevokeBrowserSession(r.Context(), sessionHash(old), now)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	v := newCookieValue()
	err := s.store.CreateBrowserSession(r.Context(), &storage.BrowserSession{
		IDHash:     sessionHash(v),
		UserID:     userID,
		CreatedAt:  now,
		AuthTime:   now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(s.ttl),
		UserAgent:  truncate(r.UserAgent(), maxUserAgent),
		IP:         remoteIP(r),
	})
	if err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(s.sessionCk, v, int(s.ttl/time.Second)))
	return nil
}

// SignOut implements oauth.Browser. The cookie is cleared even when the
// database cannot be reached, so the browser at least forgets it.
func (s *Site) SignOut(w http.ResponseWriter, r *http.Request) (string, error) {
	v, ok := cookieValue(r, s.sessionCk)
	if _, err := r.Cookie(s.sessionCk); err == nil {
		http.SetCookie(w, s.cookie(s.sessionCk, "", -1))
	}
	if !ok {
		return "", nil
	}
	now := s.now()
	var userID string
	b, err := s.store.GetBrowserSession(r.Context(), sessionHash(v), now)
	switch {
	case err == nil:
		userID = b.UserID
	case !errors.Is(err, storage.ErrNotFound):
		return "", err
	}
	err = s.store.RevokeBrowserSession(r.Context(), sessionHash(v), now)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	return userID, nil
}

// remoteIP is the host part of the peer address. Behind a proxy it is the
// proxy's: trusting X-Forwarded-For needs a configured list of proxies.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// csrfToken returns the token forms carry for the CSRF cookie of r,
// setting a new cookie first when r has none (call it once per response). The token is an HMAC of the
// cookie: a site that can write our cookies (a sibling subdomain over
// http) still cannot compute the matching token without the key.
func (s *Site) csrfToken(w http.ResponseWriter, r *http.Request) string {
	v, ok := cookieValue(r, s.csrfCk)
	if !ok {
		v = newCookieValue()
		// A session cookie (no Max-Age): it lives as long as the browser.
		http.SetCookie(w, s.cookie(s.csrfCk, v, 0))
	}
	return s.csrfFor(v)
}

func (s *Site) csrfFor(cookie string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF implements oauth.Browser: r must be a POST whose csrf_token
// field matches the CSRF cookie, and whose Origin, when the browser sends
// one, is the issuer's.
func (s *Site) CheckCSRF(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, s.origin) {
		return false
	}
	v, ok := cookieValue(r, s.csrfCk)
	if !ok {
		return false
	}
	got := r.PostFormValue("csrf_token")
	want := s.csrfFor(v)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
