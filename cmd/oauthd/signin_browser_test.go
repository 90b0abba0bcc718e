package main

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd/storage/storagetest"
)

const (
	sessionCookie = "oauthd_session"
	csrfCookie    = "oauthd_csrf"
)

// TestSignInCSRF: the login and consent POSTs need the CSRF token of this
// browser and, when an Origin is sent, the issuer's origin (checklist S3);
// a refused POST changes nothing.
func TestSignInCSRF(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		other := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		u, verifier := f.authURL(nil)

		login := a.open(u)
		if !isLoginPage(login) {
			t.Fatalf("authorize did not lead to the login page: %d %.300s", login.Status, login.Body)
		}
		otherLogin := other.open(u)
		otherToken := formWith(t, otherLogin, "password").Fields.Get("csrf_token")
		lf := formWith(t, login, "password")
		good := loginValues(lf, testUsername, testPassword)
		if good.Get("csrf_token") == "" || good.Get("csrf_token") == otherToken {
			t.Fatalf("CSRF tokens: ours %q, the other browser's %q", good.Get("csrf_token"), otherToken)
		}
		type attempt struct {
			name   string
			values func(url.Values) url.Values
			header map[string]string
		}
		without := func(v url.Values) url.Values { v = cloneValues(v); v.Del("csrf_token"); return v }
		with := func(tok string) func(url.Values) url.Values {
			return func(v url.Values) url.Values { v = cloneValues(v); v.Set("csrf_token", tok); return v }
		}
		same := func(v url.Values) url.Values { return cloneValues(v) }
		attempts := []attempt{
			{name: "no csrf_token", values: without},
			{name: "empty csrf_token", values: with("")},
			{name: "another browser's csrf_token", values: with(otherToken)},
			{name: "cross-site Origin", values: same, header: map[string]string{"Origin": "https://evil.example"}},
			{name: "null Origin", values: same, header: map[string]string{"Origin": "null"}},
		}
		for _, at := range attempts {
			p := a.submit(login, lf, at.values(good), at.header)
			if p.Status != http.StatusForbidden {
				t.Errorf("login POST, %s: status %d, want 403", at.name, p.Status)
			}
			if strings.Contains(strings.Join(p.Header.Values("Set-Cookie"), "\n"), sessionCookie+"=") || a.cookie(sessionCookie) != "" {
				t.Fatalf("login POST, %s: a session cookie was set", at.name)
			}
		}
		// Control: the same form, untampered, from our own origin.
		p := a.submit(login, lf, good, map[string]string{"Origin": f.ts.PublicURL})
		if p.Status != http.StatusSeeOther || a.cookie(sessionCookie) == "" {
			t.Fatalf("login POST with the right token: %d (cookie %q), want 303 and a session", p.Status, a.cookie(sessionCookie))
		}
		consent := a.open(p.location().String())
		if !isConsentPage(consent) {
			t.Fatalf("no consent page after sign-in: %d %.300s", consent.Status, consent.Body)
		}
		cf := formWith(t, consent, "decision")
		allow := cloneValues(cf.Fields)
		allow.Set("decision", "allow")
		for _, at := range attempts {
			p := a.submit(consent, cf, at.values(allow), at.header)
			if p.Status != http.StatusForbidden {
				t.Errorf("consent POST, %s: status %d, want 403", at.name, p.Status)
			}
			if loc := p.location(); loc != nil {
				t.Errorf("consent POST, %s: redirected to %s", at.name, loc)
			}
		}
		// Nothing was consented: the page is still asked for.
		if again := a.open(consent.URL.String()); !isConsentPage(again) {
			t.Fatalf("consent page gone after refused POSTs: %d %.300s", again.Status, again.Body)
		}
		p = a.submit(consent, cf, allow, map[string]string{"Origin": f.ts.PublicURL})
		q := f.callback(t, p.location(), f.redirect, "state-0123456789")
		if ans := f.exchange(t, q.Get("code"), verifier); ans.Status != http.StatusOK {
			t.Fatalf("exchange after the accepted consent: %s", ans)
		}
	})
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// randomCookieValue is a value of the shape the server issues (32 random
// bytes, base64url), so the server does not discard it as junk.
func randomCookieValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestSignInSessionFixation: the browser session identifier changes at
// every sign-in (checklist S2); a planted or replaced value signs nobody
// in.
func TestSignInSessionFixation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		planted := randomCookieValue()
		a.setCookie(sessionCookie, planted)
		f.signIn(t, a)
		v1 := a.cookie(sessionCookie)
		if v1 == "" || v1 == planted {
			t.Fatalf("session cookie after sign-in %q (planted %q): want a new value", v1, planted)
		}
		f.signIn(t, a, oauth2.SetAuthURLParam("prompt", "login"))
		v2 := a.cookie(sessionCookie)
		if a.Pages["login"] != 2 || v2 == "" || v2 == v1 {
			t.Fatalf("second sign-in in one jar: login pages %d, cookie %q then %q: want a new value", a.Pages["login"], v1, v2)
		}
		silent := func(value string) page {
			b := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			b.setCookie(sessionCookie, value)
			u, _ := f.authURL(url.Values{"prompt": {"none"}})
			return b.send(http.MethodGet, u, nil, nil)
		}
		for name, v := range map[string]string{"planted": planted, "replaced": v1} {
			f.wantErrorRedirect(t, name+" session value", silent(v), f.redirect, "state-0123456789", "login_required")
		}
		if loc := silent(v2).location(); loc == nil || !loc.Query().Has("code") {
			t.Fatalf("the current session value does not sign in: %v", loc)
		}
	})
}

var alertRe = regexp.MustCompile(`(?s)<p class="alert"[^>]*>(.*?)</p>`)

// TestSignInLoginErrorsAreUniform: an unknown username and a wrong
// password get the same status and the same message (checklist S7), and
// the same page apart from the echoed username.
func TestSignInLoginErrorsAreUniform(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		u, _ := f.authURL(nil)
		login := a.open(u)
		lf := formWith(t, login, "password")
		try := func(username, password string) page {
			p := a.submit(login, lf, loginValues(lf, username, password), nil)
			if a.cookie(sessionCookie) != "" {
				t.Fatalf("%s/%s signed in", username, password)
			}
			return p
		}
		unknown := try("mallory", testPassword)
		wrong := try(testUsername, "wrong password")
		for name, p := range map[string]page{"unknown username": unknown, "wrong password": wrong} {
			if p.Status != http.StatusUnauthorized || !isLoginPage(p) {
				t.Errorf("%s: status %d, want 401 and the login form again", name, p.Status)
			}
		}
		mu, mw := alertRe.FindStringSubmatch(unknown.Body), alertRe.FindStringSubmatch(wrong.Body)
		if mu == nil || mw == nil || mu[1] != mw[1] {
			t.Fatalf("messages differ: unknown %q, wrong password %q", mu, mw)
		}
		if strings.ReplaceAll(unknown.Body, `value="mallory"`, "") != strings.ReplaceAll(wrong.Body, `value="`+testUsername+`"`, "") {
			t.Error("the two error pages differ beyond the echoed username")
		}
		// Control: the right password from the same page signs in.
		if p := a.submit(login, lf, loginValues(lf, testUsername, testPassword), nil); p.Status != http.StatusSeeOther {
			t.Fatalf("right password: %d", p.Status)
		}
	})
}

// TestSignInPageSecurityHeaders: every page forbids framing and caching;
// every cookie is HttpOnly with SameSite, and not Secure on an http issuer
// (contract "Security properties", "Scripted user agents").
func TestSignInPageSecurityHeaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		pages := map[string]page{}
		u, _ := f.authURL(nil)
		login := a.open(u)
		pages["login"] = login
		lf := formWith(t, login, "password")
		pages["login error"] = a.submit(login, lf, loginValues(lf, testUsername, "wrong"), nil)
		pages["CSRF refusal"] = a.submit(login, lf, url.Values{"username": {testUsername}, "password": {testPassword}}, nil)
		signedIn := a.submit(login, lf, loginValues(lf, testUsername, testPassword), nil)
		pages["redirect after sign-in"] = signedIn
		pages["consent"] = a.open(signedIn.location().String())
		if !isConsentPage(pages["consent"]) {
			t.Fatalf("no consent page: %.300s", pages["consent"].Body)
		}
		unknown, _ := f.authURL(url.Values{"client_id": {"nope"}})
		pages["error"] = a.send(http.MethodGet, unknown, nil, nil)
		pages["account"] = a.open(f.ts.PublicURL + "/account/sessions")
		confirm := a.open(f.ts.PublicURL + "/oauth2/logout")
		pages["logout confirmation"] = confirm
		pages["signed out"] = a.submit(confirm, formWith(t, confirm, "csrf_token"), formWith(t, confirm, "csrf_token").Fields, nil)

		var cookies []string
		for name, p := range pages {
			h := p.Header
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s page: Content-Security-Policy %q lacks frame-ancestors 'none'", name, csp)
			}
			if xfo := h.Get("X-Frame-Options"); xfo != "DENY" {
				t.Errorf("%s page: X-Frame-Options %q, want DENY", name, xfo)
			}
			if cc := h.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("%s page: Cache-Control %q, want no-store", name, cc)
			}
			if p.Status == http.StatusOK && !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Errorf("%s page: Content-Type %q", name, h.Get("Content-Type"))
			}
			cookies = append(cookies, h.Values("Set-Cookie")...)
		}
		if pages["signed out"].Status != http.StatusOK || pages["account"].Status != http.StatusOK {
			t.Fatalf("signed out %d, account %d: want 200 pages", pages["signed out"].Status, pages["account"].Status)
		}
		seen := map[string]bool{}
		for _, raw := range cookies {
			c, err := http.ParseSetCookie(raw)
			if err != nil {
				t.Errorf("Set-Cookie %q: %v", raw, err)
				continue
			}
			seen[c.Name] = true
			if !c.HttpOnly {
				t.Errorf("cookie %s is not HttpOnly: %q", c.Name, raw)
			}
			if c.SameSite != http.SameSiteLaxMode && c.SameSite != http.SameSiteStrictMode {
				t.Errorf("cookie %s has no SameSite=Lax/Strict: %q", c.Name, raw)
			}
			if c.Secure {
				t.Errorf("cookie %s is Secure on an http issuer (browsers would drop it): %q", c.Name, raw)
			}
		}
		if !seen[sessionCookie] || !seen[csrfCookie] {
			t.Errorf("cookies seen %v, want %s and %s", seen, sessionCookie, csrfCookie)
		}

		t.Run("https issuer", func(t *testing.T) {
			// Served over plain http here, but the issuer decides: Secure
			// and the __Host- prefix.
			ts := startServer(t, b.NewDSN(t), map[string]string{"OAUTHD_ISSUER": "https://login.example"})
			resp, err := http.Get(ts.PublicURL + "/login")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cs := resp.Cookies()
			if len(cs) != 1 || cs[0].Name != "__Host-"+csrfCookie || !cs[0].Secure || !cs[0].HttpOnly ||
				cs[0].SameSite != http.SameSiteLaxMode || cs[0].Path != "/" || cs[0].Domain != "" {
				t.Errorf("login page cookies on an https issuer: %q", resp.Header.Values("Set-Cookie"))
			}
		})
	})
}

// signedIn reports whether agent a's browser session still signs in
// silently (prompt=none gives a code).
func (f *signInFixture) signedIn(t *testing.T, a *agent) bool {
	t.Helper()
	u, _ := f.authURL(url.Values{"prompt": {"none"}})
	loc := a.send(http.MethodGet, u, nil, nil).location()
	if loc == nil {
		t.Fatal("prompt=none did not redirect")
	}
	return loc.Query().Has("code")
}

// TestSignInLogout: RP-initiated logout ends the browser session and the
// grant session its id_token_hint names, redirects only to a registered
// post_logout_redirect_uri, and asks for confirmation without a hint.
func TestSignInLogout(t *testing.T) {
	const bye = "http://127.0.0.1:9/bye"
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		logoutURL := func(q url.Values) string { return f.ts.PublicURL + "/oauth2/logout?" + q.Encode() }

		t.Run("with id_token_hint", func(t *testing.T) {
			a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			other := f.signIn(t, a)
			g := f.signIn(t, a)
			p := a.send(http.MethodGet, logoutURL(url.Values{"id_token_hint": {g.ID}, "post_logout_redirect_uri": {bye}, "state": {"x"}}), nil, nil)
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != bye+"?state=x" {
				t.Fatalf("logout: %d to %q, want 303 to %s?state=x", p.Status, p.Header.Get("Location"), bye)
			}
			f.wantGrantRevoked(t, g)
			// Only the grant session the hint names ends.
			f.wantGrantLive(t, other)
			if a.cookie(sessionCookie) != "" {
				t.Error("the session cookie survived the logout")
			}
			if login := a.open(func() string { u, _ := f.authURL(nil); return u }()); !isLoginPage(login) {
				t.Fatalf("after logout authorize did not show the login page: %d %.300s", login.Status, login.Body)
			}
		})

		t.Run("unregistered post_logout_redirect_uri", func(t *testing.T) {
			a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			g := f.signIn(t, a)
			f.ts.createClient(map[string]any{"client_name": "B", "redirect_uris": []string{"http://127.0.0.1:7/cb"},
				"grant_types": []string{"authorization_code"}, "scope": "openid", "post_logout_redirect_uris": []string{"http://127.0.0.1:7/evil.example"}})
			cases := map[string]url.Values{
				"another client's": {"id_token_hint": {g.ID}, "post_logout_redirect_uri": {"http://127.0.0.1:7/evil.example"}},
				"forged hint":      {"id_token_hint": {g.ID[:len(g.ID)-4] + "AAAA"}, "post_logout_redirect_uri": {bye}},
				"other host":       {"id_token_hint": {g.ID}, "post_logout_redirect_uri": {"https://evil.example/bye"}, "state": {"x"}},
				"registered+path":  {"id_token_hint": {g.ID}, "post_logout_redirect_uri": {bye + "/../evil"}},
				"trailing slash":   {"id_token_hint": {g.ID}, "post_logout_redirect_uri": {bye + "/"}},
				"no hint":          {"post_logout_redirect_uri": {bye}},
				"client_id only":   {"client_id": {"no-such-client"}, "post_logout_redirect_uri": {"https://evil.example/bye"}},
			}
			for name, q := range cases {
				wantErrorPage(t, name, a.send(http.MethodGet, logoutURL(q), nil, nil), http.StatusBadRequest, "evil.example")
			}
			if !f.signedIn(t, a) {
				t.Error("a refused logout signed the browser out")
			}
			f.wantGrantLive(t, g)
		})

		t.Run("without id_token_hint", func(t *testing.T) {
			a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			g := f.signIn(t, a)
			confirm := a.open(logoutURL(url.Values{"client_id": {f.client.ID}, "post_logout_redirect_uri": {bye}, "state": {"y"}}))
			if confirm.Status != http.StatusOK {
				t.Fatalf("logout without a hint: %d, want a confirmation page", confirm.Status)
			}
			lf := formWith(t, confirm, "csrf_token")
			if p := a.submit(confirm, lf, url.Values{"logout": {lf.Fields.Get("logout")}}, nil); p.Status != http.StatusForbidden {
				t.Errorf("confirmation POST without csrf_token: %d, want 403", p.Status)
			}
			if p := a.submit(confirm, lf, lf.Fields, map[string]string{"Origin": "https://evil.example"}); p.Status != http.StatusForbidden {
				t.Errorf("confirmation POST from another origin: %d, want 403", p.Status)
			}
			if !f.signedIn(t, a) {
				t.Fatal("a refused confirmation signed the browser out")
			}
			p := a.submit(confirm, lf, lf.Fields, nil)
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != bye+"?state=y" {
				t.Fatalf("confirmed logout: %d to %q, want 303 to %s?state=y", p.Status, p.Header.Get("Location"), bye)
			}
			if f.signedIn(t, a) {
				t.Error("still signed in after the confirmed logout")
			}
			// Without a hint no grant session is named: the app keeps its
			// tokens (a browser sign-out is not a grant revocation).
			f.wantGrantLive(t, g)
		})
	})
}

// TestSignInAdminRevokesSessions: DELETE /admin/sessions/{sid} and DELETE
// /admin/users/{id}/sessions end grant sessions at once.
func TestSignInAdminRevokesSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		g1, g2 := f.signIn(t, a), f.signIn(t, a)
		if status, body := f.ts.adminDo(http.MethodDelete, "/admin/sessions/"+g1.SID, nil); status != http.StatusNoContent {
			t.Fatalf("DELETE session: %d %s", status, body)
		}
		f.wantGrantRevoked(t, g1)
		f.wantGrantLive(t, g2)
		if status, _ := f.ts.adminDo(http.MethodDelete, "/admin/sessions/gs_unknown", nil); status != http.StatusNotFound {
			t.Errorf("DELETE unknown session: %d, want 404", status)
		}
		g3 := f.signIn(t, a)
		if status, body := f.ts.adminDo(http.MethodDelete, "/admin/users/"+url.PathEscape(f.userID)+"/sessions", nil); status != http.StatusNoContent {
			t.Fatalf("DELETE user sessions: %d %s", status, body)
		}
		f.wantGrantRevoked(t, g2)
		f.wantGrantRevoked(t, g3)
		if ids := f.sessionIDs(t); len(ids) != 0 {
			t.Errorf("sessions left: %v", ids)
		}
		// Grant sessions are not the browser session (contract).
		if !f.signedIn(t, a) {
			t.Error("revoking grant sessions signed the browser out")
		}
	})
}

// TestSignInAccountSessions: the account page lists the user's grant
// sessions and ends one through its form (CSRF-checked, own sessions only).
func TestSignInAccountSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		g := f.signIn(t, a)
		account := a.open(f.ts.PublicURL + "/account/sessions")
		if account.Status != http.StatusOK || !strings.Contains(account.Body, "Test App") {
			t.Fatalf("account page: %d %.300s", account.Status, account.Body)
		}
		var rf form
		for _, fm := range forms(account.Body) {
			if fm.Fields.Get("session_id") == g.SID {
				rf = fm
			}
		}
		if rf.Fields == nil {
			t.Fatalf("the account page does not list session %s", g.SID)
		}
		if p := a.submit(account, rf, url.Values{"session_id": {g.SID}}, nil); p.Status != http.StatusForbidden {
			t.Errorf("revoke without csrf_token: %d, want 403", p.Status)
		}
		// Another user cannot end it with their own valid form.
		if status, body := f.ts.adminDo(http.MethodPost, "/admin/users", map[string]any{"username": "bob", "password": "bob's password 123"}); status != http.StatusCreated {
			t.Fatalf("create bob: %d %s", status, body)
		}
		bob := newAgent(t, f.ts.PublicURL, "bob", "bob's password 123")
		f.signIn(t, bob)
		bobPage := bob.open(f.ts.PublicURL + "/account/sessions")
		bf := formWith(t, bobPage, "session_id")
		steal := cloneValues(bf.Fields)
		steal.Set("session_id", g.SID)
		if p := bob.submit(bobPage, bf, steal, nil); p.Status != http.StatusNotFound {
			t.Errorf("another user's revoke: %d, want 404", p.Status)
		}
		f.wantGrantLive(t, g)

		p := a.submit(account, rf, rf.Fields, nil)
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/account/sessions" {
			t.Fatalf("revoke: %d to %q, want 303 to /account/sessions", p.Status, p.Header.Get("Location"))
		}
		f.wantGrantRevoked(t, g)
		if again := a.open(f.ts.PublicURL + "/account/sessions"); strings.Contains(again.Body, g.SID) {
			t.Error("the account page still lists the revoked session")
		}
		// The consent went with it: the app has to ask again.
		before := a.Pages["consent"]
		f.signIn(t, a)
		if a.Pages["consent"] != before+1 {
			t.Errorf("no consent asked after revoking the app's session")
		}
	})
}

// TestSignInLoginReturnToStaysOnServer: the login form's return_to never
// sends the browser to another site (RFC 9700 §4.11, no open redirector).
func TestSignInLoginReturnToStaysOnServer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		for _, rt := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example/", "/\t/evil.example/",
			"http:evil.example", "javascript:alert(1)", "/%2F%2Fevil.example"} {
			a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			login := a.open(f.ts.PublicURL + "/login?" + url.Values{"return_to": {rt}}.Encode())
			lf := formWith(t, login, "password")
			v := loginValues(lf, testUsername, testPassword)
			v.Set("return_to", rt)
			p := a.submit(login, lf, v, nil)
			loc := p.Header.Get("Location")
			if p.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
				t.Errorf("return_to %q: %d to %q, want 303 to a path on the server", rt, p.Status, loc)
			}
			if target, err := p.URL.Parse(loc); err != nil || !a.onServer(target) {
				t.Errorf("return_to %q: the browser goes to %v", rt, target)
			}
		}
	})
}
