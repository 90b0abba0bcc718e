package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/oauthd/oauthd/storage"
)

// Paths of the pages. oauth reaches them through LoginURL; the constants
// are for main and tests.
const (
	PathLogin           = "/login"
	PathAccountSessions = "/account/sessions"

	pathRevoke = "/account/sessions/revoke"
	pathLogout = "/account/logout"
	pathStatic = "/static/"
)

// defaultSessionTTL is the browser session lifetime when Config leaves it 0.
const defaultSessionTTL = 24 * time.Hour

// Config configures the pages and the browser session.
type Config struct {
	// Issuer is the server's issuer URL. Its scheme decides the cookie
	// attributes (https: __Host- names and Secure) and its origin is the
	// only one accepted in the Origin header of a form POST.
	Issuer string
	// Key is the HMAC key of the CSRF tokens, at least 32 bytes (derive it
	// from the system secret).
	Key []byte
	// SessionTTL is the browser session lifetime; 0 means 24h.
	SessionTTL time.Duration
}

// store is what web needs from persistence; *storage.Store implements it.
type store interface {
	CreateBrowserSession(ctx context.Context, b *storage.BrowserSession) error
	GetBrowserSession(ctx context.Context, idHash string, now time.Time) (*storage.BrowserSession, error)
	RevokeBrowserSession(ctx context.Context, idHash string, now time.Time) error
	ListActiveGrantSessions(ctx context.Context, userID string, now time.Time) ([]storage.GrantSession, error)
	GetGrantSession(ctx context.Context, id string) (*storage.GrantSession, error)
	RevokeGrantSession(ctx context.Context, id, reason string, now time.Time) error
	DeleteConsent(ctx context.Context, userID, clientID string) error
	GetClient(ctx context.Context, id string) (*storage.Client, error)
	GetUser(ctx context.Context, id string) (*storage.User, error)
}

// authenticator checks a username and password; *accounts.Accounts
// implements it. Unknown user and wrong password both answer
// accounts.ErrBadCredentials; any other error means the check could not
// be made (the database is away).
type authenticator interface {
	Authenticate(ctx context.Context, username, password string) (*storage.User, error)
}

// Site serves the pages and implements oauth.Browser. It is safe for
// concurrent use.
type Site struct {
	store  store
	auth   authenticator
	logger *slog.Logger
	key    []byte
	ttl    time.Duration
	// origin is the issuer's scheme://host[:port], lower case, without a
	// default port: what browsers send as Origin.
	origin    string
	secure    bool
	sessionCk string
	csrfCk    string
	pages     pages
	// assets maps a static file to its version (content hash).
	assets map[string]string
	// now is the clock; tests replace it.
	now func() time.Time
}

// New checks cfg and builds the site. It does no I/O.
func New(cfg Config, st store, auth authenticator, logger *slog.Logger) (*Site, error) {
	if st == nil || auth == nil || logger == nil {
		return nil, errors.New("web: store, authenticator and logger are required")
	}
	if len(cfg.Key) < 32 {
		return nil, fmt.Errorf("web: the CSRF key has %d bytes, at least 32 are required", len(cfg.Key))
	}
	origin, secure, err := issuerOrigin(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	ttl := cfg.SessionTTL
	switch {
	case ttl == 0:
		ttl = defaultSessionTTL
	case ttl < 0:
		return nil, fmt.Errorf("web: negative session lifetime %s", ttl)
	}
	p, err := loadPages()
	if err != nil {
		return nil, err
	}
	s := &Site{
		store:     st,
		auth:      auth,
		logger:    logger,
		key:       append([]byte(nil), cfg.Key...),
		ttl:       ttl,
		origin:    origin,
		secure:    secure,
		sessionCk: "oauthd_session",
		csrfCk:    "oauthd_csrf",
		pages:     p,
		assets:    staticAssets(),
		now:       time.Now,
	}
	if secure {
		// __Host- makes the browser refuse the cookie unless it is Secure,
		// Path=/ and without Domain, so no sibling host can plant one.
		s.sessionCk, s.csrfCk = "__Host-"+s.sessionCk, "__Host-"+s.csrfCk
	}
	return s, nil
}

// issuerOrigin returns the origin of the issuer URL as a browser
// serializes it, and whether it is https.
func issuerOrigin(issuer string) (string, bool, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return "", false, fmt.Errorf("web: the issuer %q is not an http(s) URL", issuer)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, scheme == "https", nil
}

// Register mounts the pages on r.
func (s *Site) Register(r *mux.Router) {
	r.HandleFunc(PathLogin, s.loginPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathLogin, s.loginSubmit).Methods(http.MethodPost)
	r.HandleFunc(PathAccountSessions, s.accountPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(pathRevoke, s.revokeSession).Methods(http.MethodPost)
	r.HandleFunc(pathLogout, s.logout).Methods(http.MethodPost)
	r.HandleFunc(pathStatic+"{file}", s.static).Methods(http.MethodGet, http.MethodHead)
}

// LoginURL implements oauth.Browser: the sign-in page that returns to
// returnTo (a local path) and pre-fills loginHint.
func (s *Site) LoginURL(returnTo, loginHint string) string {
	var q []string
	if returnTo != "" {
		q = append(q, "return_to="+url.QueryEscape(returnTo))
	}
	if loginHint != "" {
		q = append(q, "login_hint="+url.QueryEscape(loginHint))
	}
	if len(q) == 0 {
		return PathLogin
	}
	return PathLogin + "?" + strings.Join(q, "&")
}
