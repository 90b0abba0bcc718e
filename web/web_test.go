package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/oauthd/oauthd/accounts"
	"github.com/oauthd/oauthd/storage"
)

const testPassword = "correct horse battery"

// Site must keep the method set of oauth.Browser (oauth/browser.go), which
// this package may not import; main's call to oauth.New checks the real one.
var _ interface {
	SignedIn(r *http.Request) (userID string, authTime time.Time, ok bool, err error)
	LoginURL(returnTo, loginHint string) string
	CheckCSRF(r *http.Request) bool
	RenderConsent(w http.ResponseWriter, r *http.Request, clientName string, scopes []string, action string, hidden url.Values)
	RenderLogout(w http.ResponseWriter, r *http.Request, clientName string, action string, hidden url.Values)
	RenderSignedOut(w http.ResponseWriter, r *http.Request)
	RenderError(w http.ResponseWriter, r *http.Request, status int, title, detail string)
	SignOut(w http.ResponseWriter, r *http.Request) (userID string, err error)
} = (*Site)(nil)

// syncBuffer is a log sink the server goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type env struct {
	t      *testing.T
	st     *storage.Store
	site   *Site
	srv    *httptest.Server
	router *mux.Router
	logs   *syncBuffer
	alice  *storage.User
	bob    *storage.User
}

// newEnv starts a site on a real SQLite store with users alice and bob.
// issuer "" means the test server's own URL.
func newEnv(t *testing.T, issuer string) *env {
	t.Helper()
	ctx := t.Context()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := storage.Open(ctx, storage.Config{DSN: "sqlite://" + filepath.Join(t.TempDir(), "t.db")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.New(st, accounts.Params{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := acc.Create(ctx, accounts.NewUser{Username: "alice", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := acc.Create(ctx, accounts.NewUser{Username: "bob", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	router := mux.NewRouter()
	srv := httptest.NewUnstartedServer(router)
	if issuer == "" {
		issuer = "http://" + srv.Listener.Addr().String()
	}
	site, err := New(Config{Issuer: issuer, Key: bytes.Repeat([]byte("k"), 32)}, st, acc, logger)
	if err != nil {
		t.Fatal(err)
	}
	site.Register(router)
	// Pages oauth renders, reachable here so the tests can drive them.
	router.HandleFunc("/test/consent", func(w http.ResponseWriter, r *http.Request) {
		site.RenderConsent(w, r, "Photo <b>Printer</b>", []string{"openid", "email", "photos.read"}, "/oauth2/authorize",
			url.Values{"state": {`"><script>alert(1)</script>`}, "client_id": {"c1"}})
	})
	router.HandleFunc("/test/logout", func(w http.ResponseWriter, r *http.Request) {
		site.RenderLogout(w, r, "Photo Printer", "/oauth2/logout", url.Values{"state": {"s"}})
	})
	router.HandleFunc("/test/signedout", site.RenderSignedOut)
	router.HandleFunc("/test/error", func(w http.ResponseWriter, r *http.Request) {
		site.RenderError(w, r, http.StatusBadRequest, "Unknown app", "The app <x> is not registered.")
	})
	router.HandleFunc("/test/check", func(w http.ResponseWriter, r *http.Request) {
		if !site.CheckCSRF(r) {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, site: site, srv: srv, router: router, logs: logs, alice: alice, bob: bob}
}

// browser is a client with its own cookie jar that does not follow
// redirects, so the 303s can be inspected.
func (e *env) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(c *http.Client, method, path string, form url.Values, header ...string) page {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return page{resp.StatusCode, resp.Header, string(b)}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf loads path and returns the CSRF token of its form.
func (e *env) csrf(c *http.Client, path string) string {
	e.t.Helper()
	p := e.do(c, "GET", path, nil)
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		e.t.Fatalf("GET %s: %d, no csrf_token in %s", path, p.status, p.body)
	}
	return m[1]
}

// login signs in through the form and returns the answer to the POST.
func (e *env) login(c *http.Client, username, password, returnTo string) page {
	e.t.Helper()
	tok := e.csrf(c, PathLogin)
	return e.do(c, "POST", PathLogin, url.Values{
		"username": {username}, "password": {password}, "return_to": {returnTo}, "csrf_token": {tok},
	})
}

func (e *env) cookie(c *http.Client, name string) string {
	u, _ := url.Parse(e.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// setCookieLine returns the raw Set-Cookie line for name.
func setCookieLine(h http.Header, name string) string {
	for _, l := range h.Values("Set-Cookie") {
		if strings.HasPrefix(l, name+"=") {
			return l
		}
	}
	return ""
}

func TestLoginSuccess(t *testing.T) {
	e := newEnv(t, "")
	c := e.browser()

	p := e.do(c, "GET", e.site.LoginURL("/oauth2/authorize?client_id=c1&state=xyz", "Alice"), nil)
	if p.status != 200 || !strings.Contains(p.body, `<form method="post">`) ||
		!strings.Contains(p.body, `name="username" type="text" value="Alice"`) || !strings.Contains(p.body, `name="password" type="password"`) {
		t.Fatalf("login page: %d %s", p.status, p.body)
	}
	csrfLine := setCookieLine(p.header, "oauthd_csrf")
	if csrfLine == "" || !strings.Contains(csrfLine, "HttpOnly") || !strings.Contains(csrfLine, "SameSite=Lax") || strings.Contains(csrfLine, "Secure") {
		t.Errorf("csrf cookie: %q", csrfLine)
	}

	p = e.login(c, "alice", testPassword, "/oauth2/authorize?client_id=c1&state=xyz")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/oauth2/authorize?client_id=c1&state=xyz" {
		t.Fatalf("login: %d Location=%q", p.status, p.header.Get("Location"))
	}
	line := setCookieLine(p.header, "oauthd_session")
	for _, want := range []string{"Path=/", "Max-Age=86400", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(line, want) {
			t.Errorf("session cookie %q lacks %s", line, want)
		}
	}
	if strings.Contains(line, "Secure") || strings.Contains(line, "Domain") {
		t.Errorf("session cookie over http: %q", line)
	}

	v := e.cookie(c, "oauthd_session")
	b, err := e.st.GetBrowserSession(t.Context(), sessionHash(v), time.Now())
	if err != nil || b.UserID != e.alice.ID || b.IP != "127.0.0.1" || b.UserAgent == "" || time.Since(b.AuthTime) > time.Minute {
		t.Fatalf("browser session row: %+v, %v", b, err)
	}
	if b.IDHash == v {
		t.Error("the cookie value is stored as is")
	}
	if p := e.do(c, "GET", PathAccountSessions, nil); p.status != 200 || !strings.Contains(p.body, "alice") {
		t.Errorf("account page after login: %d %s", p.status, p.body)
	}
}

func TestLoginDefaultsToAccountPage(t *testing.T) {
	e := newEnv(t, "")
	c := e.browser()
	if p := e.login(c, "ALICE", testPassword, ""); p.status != http.StatusSeeOther || p.header.Get("Location") != PathAccountSessions {
		t.Fatalf("login: %d %q", p.status, p.header.Get("Location"))
	}
}

func TestHTTPSIssuerUsesHostCookies(t *testing.T) {
	e := newEnv(t, "https://auth.example")
	serve := func(req *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.router.ServeHTTP(rec, req)
		return rec
	}
	rec := serve(httptest.NewRequest("GET", "https://auth.example/login", nil))
	csrfLine := setCookieLine(rec.Header(), "__Host-oauthd_csrf")
	if csrfLine == "" || !strings.Contains(csrfLine, "Secure") || !strings.Contains(csrfLine, "Path=/") || strings.Contains(csrfLine, "Domain") {
		t.Fatalf("csrf cookie: %q (all: %q)", csrfLine, rec.Header().Values("Set-Cookie"))
	}
	ck := rec.Result().Cookies()[0]
	tok := csrfRE.FindStringSubmatch(rec.Body.String())[1]

	form := url.Values{"username": {"alice"}, "password": {testPassword}, "csrf_token": {tok}}
	req := httptest.NewRequest("POST", "https://auth.example/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://auth.example")
	req.AddCookie(ck)
	rec = serve(req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	line := setCookieLine(rec.Header(), "__Host-oauthd_session")
	for _, want := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(line, want) {
			t.Errorf("session cookie %q lacks %s", line, want)
		}
	}
	if strings.Contains(line, "Domain") {
		t.Errorf("session cookie has a Domain: %q", line)
	}
}

func TestSessionIDChangesAtEverySignIn(t *testing.T) {
	e := newEnv(t, "")
	c := e.browser()

	// A session id planted before sign-in (fixation) is not the one signed in.
	planted := newCookieValue()
	u, _ := url.Parse(e.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "oauthd_session", Value: planted, Path: "/"}})

	var seen []string
	for i := 0; i < 2; i++ {
		if p := e.login(c, "alice", testPassword, "/"); p.status != http.StatusSeeOther {
			t.Fatalf("login %d: %d", i, p.status)
		}
		v := e.cookie(c, "oauthd_session")
		if v == planted {
			t.Fatal("the planted session id was kept")
		}
		seen = append(seen, v)
	}
	if seen[0] == seen[1] {
		t.Fatal("the session cookie did not change at the second sign-in")
	}
	if _, err := e.st.GetBrowserSession(t.Context(), sessionHash(seen[0]), time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the first session is still live: %v", err)
	}
	// A browser holding the old cookie is not signed in.
	old := e.browser()
	old.Jar.SetCookies(u, []*http.Cookie{{Name: "oauthd_session", Value: seen[0], Path: "/"}})
	if p := e.do(old, "GET", PathAccountSessions, nil); p.status != http.StatusSeeOther {
		t.Errorf("old cookie still signs in: %d", p.status)
	}
	if p := e.do(c, "GET", PathAccountSessions, nil); p.status != http.StatusOK {
		t.Errorf("new cookie does not sign in: %d", p.status)
	}
}

func TestBadCredentialsLookAlike(t *testing.T) {
	e := newEnv(t, "")
	type answer struct {
		status int
		msg    bool
	}
	var first *answer
	for _, tc := range []struct{ name, username, password string }{
		{"wrong password", "alice", "not the password"},
		{"unknown user", "mallory", "not the password"},
		{"empty password", "alice", ""},
		{"empty username", "", testPassword},
		{"password too long", "alice", strings.Repeat("p", 2000)},
		{"username too long", strings.Repeat("a", 300), testPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.browser()
			p := e.login(c, tc.username, tc.password, "/x")
			got := answer{p.status, strings.Contains(p.body, `role="alert"`) && strings.Contains(p.body, "Wrong username or password.")}
			if first == nil {
				first = &got
			}
			if got != *first || got.status != http.StatusUnauthorized || !got.msg {
				t.Errorf("got %+v, want 401 with the one message", got)
			}
			if tc.password != "" && strings.Contains(p.body, tc.password) {
				t.Error("the password is echoed")
			}
			if len(tc.username) < 100 && !strings.Contains(p.body, `value="`+tc.username+`"`) {
				t.Error("the username was not kept")
			}
			if !strings.Contains(p.body, `name="return_to" value="/x"`) {
				t.Error("return_to was lost")
			}
			if e.cookie(c, "oauthd_session") != "" {
				t.Error("a session cookie was set")
			}
		})
	}
}

func TestCSRFRefused(t *testing.T) {
	e := newEnv(t, "")
	other := e.browser()
	otherTok := e.csrf(other, PathLogin)

	for _, tc := range []struct {
		name   string
		token  func(tok string) string
		noJar  bool
		header []string
		want   int
	}{
		{name: "valid", token: func(tok string) string { return tok }, want: http.StatusSeeOther},
		{name: "valid with own origin", token: func(tok string) string { return tok }, header: []string{"Origin", e.srv.URL}, want: http.StatusSeeOther},
		{name: "missing token", token: func(string) string { return "" }, want: http.StatusForbidden},
		{name: "wrong token", token: func(string) string { return strings.Repeat("A", 43) }, want: http.StatusForbidden},
		{name: "another browser's token", token: func(string) string { return otherTok }, want: http.StatusForbidden},
		{name: "no csrf cookie", token: func(tok string) string { return tok }, noJar: true, want: http.StatusForbidden},
		{name: "cross-site origin", token: func(tok string) string { return tok }, header: []string{"Origin", "https://evil.example"}, want: http.StatusForbidden},
		{name: "null origin", token: func(tok string) string { return tok }, header: []string{"Origin", "null"}, want: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.browser()
			tok := e.csrf(c, PathLogin)
			if tc.noJar {
				c = e.browser()
			}
			form := url.Values{"username": {"alice"}, "password": {testPassword}}
			if v := tc.token(tok); v != "" {
				form.Set("csrf_token", v)
			}
			p := e.do(c, "POST", PathLogin, form, tc.header...)
			if p.status != tc.want {
				t.Fatalf("status %d, want %d", p.status, tc.want)
			}
			if tc.want == http.StatusForbidden && (setCookieLine(p.header, "oauthd_session") != "" || !strings.Contains(p.body, "This form has expired")) {
				t.Errorf("refused login set a session or showed no error page: %s", p.body)
			}
		})
	}

	// The other forms check it too.
	c := e.browser()
	e.login(c, "alice", testPassword, "/")
	for _, path := range []string{pathLogout, pathRevoke} {
		if p := e.do(c, "POST", path, url.Values{"session_id": {"x"}}); p.status != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d", path, p.status)
		}
	}
	if p := e.do(c, "GET", PathAccountSessions, nil); p.status != http.StatusOK {
		t.Errorf("the refused logout signed out: %d", p.status)
	}
}

func TestUnsafeReturnToGoesToAccountPage(t *testing.T) {
	e := newEnv(t, "")
	for _, rt := range []string{
		"https://evil.example", "//evil.example", `/\evil.example`, "javascript:alert(1)", "http:/x",
		"/\t/evil.example", "/a\\b", "evil.example", "/%0a/x\r\n", "///evil.example",
	} {
		t.Run(rt, func(t *testing.T) {
			p := e.login(e.browser(), "alice", testPassword, rt)
			if p.status != http.StatusSeeOther || p.header.Get("Location") != PathAccountSessions {
				t.Errorf("return_to %q: %d Location=%q", rt, p.status, p.header.Get("Location"))
			}
		})
	}
}

func TestSafeReturnTo(t *testing.T) {
	for in, want := range map[string]string{
		"/oauth2/authorize?client_id=a&state=%2F%2Fx": "/oauth2/authorize?client_id=a&state=%2F%2Fx",
		"/":                                    "/",
		"/account/sessions#x":                  "/account/sessions#x",
		"":                                     "",
		"//evil.example":                       "",
		`/\evil.example`:                       "",
		"/\t/evil.example":                     "",
		"/\n/evil.example":                     "",
		"https://evil.example":                 "",
		"javascript:alert(1)":                  "",
		"http:/x":                              "",
		"x/y":                                  "",
		"/" + strings.Repeat("a", maxReturnTo): "",
	} {
		if got := safeReturnTo(in); got != want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecurityHeadersOnEveryPage(t *testing.T) {
	e := newEnv(t, "")
	signedIn := e.browser()
	e.login(signedIn, "alice", testPassword, "/")
	for _, tc := range []struct {
		name   string
		c      *http.Client
		method string
		path   string
		form   url.Values
		status int
		html   bool
	}{
		{"login", e.browser(), "GET", PathLogin, nil, 200, true},
		{"login refused", e.browser(), "POST", PathLogin, url.Values{"username": {"a"}}, 403, true},
		{"account", signedIn, "GET", PathAccountSessions, nil, 200, true},
		{"account redirect", e.browser(), "GET", PathAccountSessions, nil, 303, false},
		{"error", e.browser(), "GET", "/test/error", nil, 400, true},
		{"consent", e.browser(), "GET", "/test/consent", nil, 200, true},
		{"logout confirmation", e.browser(), "GET", "/test/logout", nil, 200, true},
		{"signed out", e.browser(), "GET", "/test/signedout", nil, 200, true},
		{"static not found", e.browser(), "GET", "/static/nope.css", nil, 404, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.do(tc.c, tc.method, tc.path, tc.form)
			if p.status != tc.status {
				t.Fatalf("status %d, want %d", p.status, tc.status)
			}
			want := map[string]string{
				"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'",
				"X-Frame-Options":         "DENY",
				"Cache-Control":           "no-store",
				"Referrer-Policy":         "same-origin",
			}
			if tc.html {
				want["Content-Type"] = "text/html; charset=utf-8"
			}
			for k, v := range want {
				if got := p.header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tc.html && (!strings.Contains(p.body, `<html lang="en">`) || !strings.Contains(p.body, "· oauthd</title>") ||
				!strings.Contains(p.body, `name="viewport"`) || strings.Contains(p.body, "<script") || strings.Contains(p.body, "style=")) {
				t.Errorf("page layout: %s", p.body)
			}
		})
	}
}

func TestStaticStylesheet(t *testing.T) {
	e := newEnv(t, "")
	p := e.do(e.browser(), "GET", e.site.assetURL("style.css"), nil)
	if p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/css") ||
		!strings.Contains(p.header.Get("Cache-Control"), "immutable") || !strings.Contains(p.body, ":focus-visible") {
		t.Errorf("style.css: %d %v", p.status, p.header)
	}
}

func (e *env) grant(id, userID, clientID, ua string, idleExpires time.Time) {
	e.t.Helper()
	now := time.Now()
	err := e.st.CreateGrantSession(e.t.Context(), &storage.GrantSession{
		ID: id, UserID: userID, ClientID: clientID, Scope: "openid", AuthTime: now,
		CreatedAt: now.Add(-time.Hour), IdleExpiresAt: idleExpires, AbsoluteExpiresAt: now.Add(48 * time.Hour),
		UserAgent: ua, IP: "203.0.113.7",
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestAccountPageListsOwnActiveSessionsAndRevokes(t *testing.T) {
	e := newEnv(t, "")
	ctx := t.Context()
	if err := e.st.CreateClient(ctx, &storage.Client{ID: "printer", Name: "Photo <Printer>", Scope: "openid"}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(24 * time.Hour)
	firefox := "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	e.grant("s-alice-1", e.alice.ID, "printer", firefox, later)
	e.grant("s-alice-2", e.alice.ID, "deleted-client", "", later)
	e.grant("s-alice-expired", e.alice.ID, "printer", "", time.Now().Add(-time.Minute))
	e.grant("s-alice-revoked", e.alice.ID, "printer", "", later)
	if err := e.st.RevokeGrantSession(ctx, "s-alice-revoked", storage.ReasonAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.grant("s-bob", e.bob.ID, "printer", "", later)
	if err := e.st.GrantConsent(ctx, e.alice.ID, "printer", []string{"openid"}, time.Now()); err != nil {
		t.Fatal(err)
	}

	c := e.browser()
	e.login(c, "alice", testPassword, "/")
	p := e.do(c, "GET", PathAccountSessions, nil)
	if p.status != 200 {
		t.Fatalf("account: %d", p.status)
	}
	for _, want := range []string{
		"alice", "Photo &lt;Printer&gt;", "deleted-client", "Firefox on Linux", "203.0.113.7",
		`value="s-alice-1"`, `value="s-alice-2"`, `action="/account/sessions/revoke"`, `action="/account/logout"`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	for _, not := range []string{"s-bob", "s-alice-expired", "s-alice-revoked"} {
		if strings.Contains(p.body, not) {
			t.Errorf("account page shows %s", not)
		}
	}

	tok := csrfRE.FindStringSubmatch(p.body)[1]
	p = e.do(c, "POST", pathRevoke, url.Values{"session_id": {"s-alice-1"}, "csrf_token": {tok}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != PathAccountSessions {
		t.Fatalf("revoke: %d %q", p.status, p.header.Get("Location"))
	}
	g, err := e.st.GetGrantSession(ctx, "s-alice-1")
	if err != nil || g.RevokedAt == nil || g.RevokedReason != storage.ReasonUser {
		t.Errorf("revoked session: %+v, %v", g, err)
	}
	if _, err := e.st.GetConsent(ctx, e.alice.ID, "printer"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("consent kept: %v", err)
	}
	if p := e.do(c, "GET", PathAccountSessions, nil); strings.Contains(p.body, "s-alice-1") || !strings.Contains(p.body, "s-alice-2") {
		t.Errorf("after revoke: %s", p.body)
	}

	// Another user's session, and an unknown one, answer 404 alike.
	for _, id := range []string{"s-bob", "no-such-session"} {
		p := e.do(c, "POST", pathRevoke, url.Values{"session_id": {id}, "csrf_token": {tok}})
		if p.status != http.StatusNotFound || !strings.Contains(p.body, "App session not found") {
			t.Errorf("revoke %s: %d", id, p.status)
		}
	}
	if g, err := e.st.GetGrantSession(ctx, "s-bob"); err != nil || !g.Live(time.Now()) {
		t.Errorf("bob's session was touched: %+v %v", g, err)
	}
}

func TestAccountPageEmptyAndSignedOut(t *testing.T) {
	e := newEnv(t, "")
	if p := e.do(e.browser(), "GET", PathAccountSessions, nil); p.status != http.StatusSeeOther ||
		p.header.Get("Location") != "/login?return_to=%2Faccount%2Fsessions" {
		t.Errorf("signed out: %d %q", p.status, p.header.Get("Location"))
	}
	c := e.browser()
	e.login(c, "bob", testPassword, "")
	if p := e.do(c, "GET", PathAccountSessions, nil); !strings.Contains(p.body, "No apps are signed in") {
		t.Errorf("empty state: %s", p.body)
	}
	// Revoking without a browser session goes to sign-in.
	anon := e.browser()
	tok := e.csrf(anon, PathLogin)
	if p := e.do(anon, "POST", pathRevoke, url.Values{"session_id": {"x"}, "csrf_token": {tok}}); p.status != http.StatusSeeOther ||
		!strings.HasPrefix(p.header.Get("Location"), PathLogin) {
		t.Errorf("anonymous revoke: %d %q", p.status, p.header.Get("Location"))
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, "")
	c := e.browser()
	e.login(c, "alice", testPassword, "/")
	v := e.cookie(c, "oauthd_session")
	tok := e.csrf(c, PathAccountSessions)

	p := e.do(c, "POST", pathLogout, url.Values{"csrf_token": {tok}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != PathLogin {
		t.Fatalf("logout: %d %q", p.status, p.header.Get("Location"))
	}
	line := setCookieLine(p.header, "oauthd_session")
	if !strings.Contains(line, "Max-Age=0") || !strings.Contains(line, "HttpOnly") || !strings.Contains(line, "Path=/") {
		t.Errorf("logout cookie: %q", line)
	}
	if e.cookie(c, "oauthd_session") != "" {
		t.Error("the jar still holds the session cookie")
	}
	if _, err := e.st.GetBrowserSession(t.Context(), sessionHash(v), time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("session row live after logout: %v", err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: "oauthd_session", Value: v})
	if uid, _, ok, err := e.site.SignedIn(req); ok || err != nil || uid != "" {
		t.Errorf("SignedIn after logout: %q %v %v", uid, ok, err)
	}
}

func TestSignInAndOutThroughTheInterface(t *testing.T) {
	e := newEnv(t, "")
	c := e.browser()
	e.login(c, "alice", testPassword, "/")
	v := e.cookie(c, "oauthd_session")

	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: "oauthd_session", Value: v})
	uid, at, ok, err := e.site.SignedIn(req)
	if !ok || err != nil || uid != e.alice.ID || time.Since(at) > time.Minute {
		t.Fatalf("SignedIn: %q %v %v %v", uid, at, ok, err)
	}
	rec := httptest.NewRecorder()
	if uid, err := e.site.SignOut(rec, req); err != nil || uid != e.alice.ID {
		t.Fatalf("SignOut: %q %v", uid, err)
	}
	if !strings.Contains(setCookieLine(rec.Header(), "oauthd_session"), "Max-Age=0") {
		t.Errorf("SignOut cookie: %q", rec.Header().Values("Set-Cookie"))
	}
	if _, _, ok, err := e.site.SignedIn(req); ok || err != nil {
		t.Errorf("SignedIn after SignOut: %v %v", ok, err)
	}
	// No cookie, or junk: not signed in, no error, nothing to clear.
	for _, ck := range []*http.Cookie{nil, {Name: "oauthd_session", Value: "junk"}} {
		req := httptest.NewRequest("GET", "/", nil)
		if ck != nil {
			req.AddCookie(ck)
		}
		if _, _, ok, err := e.site.SignedIn(req); ok || err != nil {
			t.Errorf("SignedIn(%v): %v %v", ck, ok, err)
		}
		if uid, err := e.site.SignOut(httptest.NewRecorder(), req); uid != "" || err != nil {
			t.Errorf("SignOut(%v): %q %v", ck, uid, err)
		}
	}
}

func TestRenderConsent(t *testing.T) {
	e := newEnv(t, "")
	c := e.browser()
	p := e.do(c, "GET", "/test/consent", nil)
	if p.status != 200 {
		t.Fatalf("consent: %d", p.status)
	}
	for _, want := range []string{
		`<button type="submit" name="decision" value="allow"`, `<button type="submit" name="decision" value="deny"`,
		`<form method="post" action="/oauth2/authorize">`,
		"Photo &lt;b&gt;Printer&lt;/b&gt;", "Confirm your identity", "See your email address", "Use “photos.read”",
		`name="state" value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`, `name="client_id" value="c1"`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("consent page lacks %s", want)
		}
	}
	if strings.Contains(p.body, `"><script>`) || strings.Contains(p.body, "<b>Printer") {
		t.Error("unescaped input on the consent page")
	}
	// The page's token passes CheckCSRF for this browser only.
	tok := csrfRE.FindStringSubmatch(p.body)[1]
	if p := e.do(c, "POST", "/test/check", url.Values{"csrf_token": {tok}, "decision": {"allow"}}); p.status != 200 {
		t.Errorf("CheckCSRF refused the consent page's token: %d", p.status)
	}
	if p := e.do(e.browser(), "POST", "/test/check", url.Values{"csrf_token": {tok}}); p.status != http.StatusForbidden {
		t.Errorf("CheckCSRF accepted the token from another browser: %d", p.status)
	}
}

func TestRenderConsentDropsCallersCSRFAndUnsafeAction(t *testing.T) {
	e := newEnv(t, "")
	rec := httptest.NewRecorder()
	e.site.RenderConsent(rec, httptest.NewRequest("GET", "/", nil), "", nil, "javascript:alert(1)",
		url.Values{"csrf_token": {"forged"}})
	body := rec.Body.String()
	if strings.Contains(body, "forged") || strings.Count(body, `name="csrf_token"`) != 1 || strings.Contains(body, "javascript:") {
		t.Errorf("consent page: %s", body)
	}
}

func TestRenderLogoutAndSignedOut(t *testing.T) {
	e := newEnv(t, "")
	p := e.do(e.browser(), "GET", "/test/logout", nil)
	if !strings.Contains(p.body, "Sign out?") || !strings.Contains(p.body, "Photo Printer") ||
		!strings.Contains(p.body, `<form method="post" action="/oauth2/logout">`) || !strings.Contains(p.body, `name="state" value="s"`) ||
		!strings.Contains(p.body, `name="csrf_token"`) || strings.Count(p.body, `type="submit"`) != 1 {
		t.Errorf("logout page: %s", p.body)
	}
	if p := e.do(e.browser(), "GET", "/test/signedout", nil); !strings.Contains(p.body, "You are signed out") {
		t.Errorf("signed-out page: %s", p.body)
	}
	if p := e.do(e.browser(), "GET", "/test/error", nil); !strings.Contains(p.body, "The app &lt;x&gt; is not registered.") {
		t.Errorf("error page: %s", p.body)
	}
}

func TestStorageOutageIsNotWrongPassword(t *testing.T) {
	e := newEnv(t, "")
	c := e.browser()
	tok := e.csrf(c, PathLogin)
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	p := e.do(c, "POST", PathLogin, url.Values{"username": {"alice"}, "password": {testPassword}, "csrf_token": {tok}})
	if p.status != http.StatusServiceUnavailable || strings.Contains(p.body, "Wrong username") {
		t.Fatalf("outage: %d %s", p.status, p.body)
	}
	for _, leak := range []string{"sql", "closed", "storage"} {
		if strings.Contains(strings.ToLower(p.body), leak) {
			t.Errorf("error page leaks %q", leak)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "sign in") || strings.Contains(logs, testPassword) || strings.Contains(logs, tok) {
		t.Errorf("logs: %s", logs)
	}
	// The account page answers 503 too, not "signed out".
	u, _ := url.Parse(e.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "oauthd_session", Value: newCookieValue(), Path: "/"}})
	if p := e.do(c, "GET", PathAccountSessions, nil); p.status != http.StatusServiceUnavailable {
		t.Errorf("account during outage: %d", p.status)
	}
}

func TestLoginURL(t *testing.T) {
	e := newEnv(t, "")
	for _, tc := range []struct{ returnTo, hint, want string }{
		{"", "", "/login"},
		{"/oauth2/authorize?a=1&b=2", "", "/login?return_to=%2Foauth2%2Fauthorize%3Fa%3D1%26b%3D2"},
		{"", "al ice@x", "/login?login_hint=al+ice%40x"},
		{"/x", "bob", "/login?return_to=%2Fx&login_hint=bob"},
	} {
		if got := e.site.LoginURL(tc.returnTo, tc.hint); got != tc.want {
			t.Errorf("LoginURL(%q, %q) = %q, want %q", tc.returnTo, tc.hint, got, tc.want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	var st *storage.Store
	auth := authFunc(func(context.Context, string, string) (*storage.User, error) { return nil, accounts.ErrBadCredentials })
	key := bytes.Repeat([]byte("k"), 32)
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{Issuer: "https://auth.example", Key: key}, true},
		{"short key", Config{Issuer: "https://auth.example", Key: key[:31]}, false},
		{"no issuer", Config{Key: key}, false},
		{"not http", Config{Issuer: "ftp://auth.example", Key: key}, false},
		{"negative ttl", Config{Issuer: "https://auth.example", Key: key, SessionTTL: -time.Second}, false},
	} {
		_, err := New(tc.cfg, st, auth, logger)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
}

type authFunc func(ctx context.Context, username, password string) (*storage.User, error)

func (f authFunc) Authenticate(ctx context.Context, u, p string) (*storage.User, error) {
	return f(ctx, u, p)
}

func TestIssuerOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://Auth.Example":          "https://auth.example",
		"https://auth.example:443/base": "https://auth.example",
		"http://localhost:8080":         "http://localhost:8080",
		"http://[::1]:80":               "http://[::1]",
	} {
		if got, _, err := issuerOrigin(in); err != nil || got != want {
			t.Errorf("issuerOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestDescribeDevice(t *testing.T) {
	for ua, want := range map[string]string{
		"": "Unknown device",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36":                                   "Chrome on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0":                   "Edge on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15":                      "Safari on macOS",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36":                       "Chrome on Android",
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0":                                                                  "Firefox on Linux",
		"curl/8.8.0":            "curl",
		"MyApp/1.0 (build 7)":   "MyApp/1.0 (build 7)",
		strings.Repeat("z", 99): strings.Repeat("z", 60) + "…",
		"Bot\x00\u200b/1":       "Bot/1",
	} {
		if got := describeDevice(ua); got != want {
			t.Errorf("describeDevice(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestLongReturnToSurvivesSignIn(t *testing.T) {
	e := newEnv(t, "")
	// oauth's return_to holds a sealed authorization request of up to 16 KiB.
	rt := "/oauth2/authorize?resume=" + strings.Repeat("Ab-_", 4<<10)
	if p := e.login(e.browser(), "alice", testPassword, rt); p.status != http.StatusSeeOther || p.header.Get("Location") != rt {
		t.Fatalf("login: %d, Location of %d bytes", p.status, len(p.header.Get("Location")))
	}
}
