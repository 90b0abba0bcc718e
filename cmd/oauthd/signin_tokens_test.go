package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// ccToken gets a client_credentials access token for c.
func (f *signInFixture) ccToken(t *testing.T, c registeredClient, scopes ...string) string {
	t.Helper()
	cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: f.ts.PublicURL + "/oauth2/token",
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials for %s: %v", c.ID, err)
	}
	return tok.AccessToken
}

// TestSignInRevocation: /oauth2/revoke (RFC 7009) as the contract has it.
func TestSignInRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		other := f.ts.createClient(map[string]any{"client_name": "Other App", "redirect_uris": []string{testRedirect},
			"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid offline_access"})

		t.Run("refresh token", func(t *testing.T) {
			g := f.signIn(t, a)
			if status, body := f.revokeAs(t, f.client, g.Refresh); status != http.StatusOK || len(body) != 0 {
				t.Fatalf("revoke: %d %q, want 200 with an empty body", status, body)
			}
			f.wantGrantRevoked(t, g)
			if status, _ := f.revokeAs(t, f.client, g.Refresh); status != http.StatusOK {
				t.Errorf("revoking again: %d, want 200", status)
			}
		})

		t.Run("access token", func(t *testing.T) {
			g := f.signIn(t, a)
			if status, body := f.revokeAs(t, f.client, g.Access); status != http.StatusOK {
				t.Fatalf("revoke: %d %s", status, body)
			}
			f.wantInactive(t, f.client, "revoked access token", g.Access)
			status, hdr, body := f.userinfoGet(t, g.Access)
			if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer ") ||
				!strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("userinfo with a revoked access token: %d %q %s, want 401 with WWW-Authenticate Bearer invalid_token", status, hdr.Get("WWW-Authenticate"), body)
			}
			// Only that access token is denied: the grant goes on.
			next := f.mustRefresh(t, g.Refresh)
			f.wantActive(t, f.client, "access token from the refresh", next.AccessToken)
		})

		t.Run("unknown tokens", func(t *testing.T) {
			g := f.signIn(t, a)
			for _, tok := range []string{"garbage", "ory_rt_AAAA.BBBB", strings.Repeat("x", 600), g.ID, g.Access[:len(g.Access)-4] + "AAAA"} {
				if status, body := f.revokeAs(t, f.client, tok); status != http.StatusOK {
					t.Errorf("revoke %.20q…: %d %s, want 200", tok, status, body)
				}
			}
			f.wantGrantLive(t, g)
		})

		t.Run("another client's tokens", func(t *testing.T) {
			g := f.signIn(t, a)
			for name, tok := range map[string]string{"refresh token": g.Refresh, "access token": g.Access} {
				if status, body := f.revokeAs(t, other, tok); status != http.StatusOK {
					t.Errorf("other client revokes the %s: %d %s, want 200", name, status, body)
				}
			}
			f.wantGrantLive(t, g)
			f.mustRefresh(t, g.Refresh)
		})

		t.Run("client authentication", func(t *testing.T) {
			g := f.signIn(t, a)
			cases := []struct {
				name   string
				c      registeredClient
				status int
				code   string
			}{
				{"none", registeredClient{}, http.StatusUnauthorized, "invalid_client"},
				{"wrong secret", registeredClient{ID: f.client.ID, Secret: "wrong-secret"}, http.StatusUnauthorized, "invalid_client"},
				{"unknown client", registeredClient{ID: "no-such-client", Secret: "x"}, http.StatusUnauthorized, "invalid_client"},
			}
			for _, tc := range cases {
				status, _, body, err := postClientForm(http.DefaultClient, f.ts.PublicURL, "/oauth2/revoke", tc.c, url.Values{"token": {g.Refresh}})
				if err != nil {
					t.Fatal(err)
				}
				var e struct{ Error string }
				_ = json.Unmarshal(body, &e)
				if status != tc.status || e.Error != tc.code {
					t.Errorf("revoke with %s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.code)
				}
			}
			if status, _, body, _ := postClientForm(http.DefaultClient, f.ts.PublicURL, "/oauth2/revoke", f.client, url.Values{}); status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_request") {
				t.Errorf("revoke without token: %d %s, want 400 invalid_request", status, body)
			}
			f.wantGrantLive(t, g)
		})
	})
}

// TestSignInIntrospection: /oauth2/introspect (RFC 7662): who may see what,
// and the members of an active answer.
func TestSignInIntrospection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		g := f.signIn(t, newAgent(t, f.ts.PublicURL, testUsername, testPassword))
		plain := f.ts.createClient(map[string]any{"client_name": "Plain", "scope": "x"})
		rs := f.ts.createClient(map[string]any{"client_name": "Resource Server", "scope": "x", "allow_introspection": true})
		public := f.ts.createClient(map[string]any{"client_name": "Public", "redirect_uris": []string{testRedirect},
			"grant_types": []string{"authorization_code"}, "scope": "openid", "token_endpoint_auth_method": "none"})

		t.Run("own tokens only", func(t *testing.T) {
			f.wantInactive(t, plain, "another client's access token", g.Access)
			f.wantInactive(t, plain, "another client's refresh token", g.Refresh)
			f.wantActive(t, plain, "its own access token", f.ccToken(t, plain))
		})

		wantMembers := func(t *testing.T, m map[string]any, tokenType string) {
			t.Helper()
			for _, k := range []string{"active", "scope", "client_id", "sub", "exp", "iat", "token_type", "sid", "aud", "iss"} {
				if _, ok := m[k]; !ok {
					t.Errorf("%s: member %q missing: %v", tokenType, k, m)
				}
			}
			if m["client_id"] != f.client.ID || m["sub"] != f.userID || m["sid"] != g.SID || m["iss"] != f.ts.PublicURL || m["token_type"] != tokenType {
				t.Errorf("%s: %v, want client_id %s sub %s sid %s iss %s token_type %s", tokenType, m, f.client.ID, f.userID, g.SID, f.ts.PublicURL, tokenType)
			}
			if scope, _ := m["scope"].(string); !strings.Contains(" "+scope+" ", " openid ") || !strings.Contains(" "+scope+" ", " offline_access ") {
				t.Errorf("%s: scope %q", tokenType, scope)
			}
			exp, _ := m["exp"].(float64)
			iat, _ := m["iat"].(float64)
			if iat <= 0 || exp <= iat {
				t.Errorf("%s: iat %v exp %v", tokenType, m["iat"], m["exp"])
			}
			if aud, ok := m["aud"].([]any); !ok || len(aud) == 0 {
				t.Errorf("%s: aud %v, want a non-empty array", tokenType, m["aud"])
			}
		}
		for name, caller := range map[string]registeredClient{"the token's client": f.client, "a resource server": rs} {
			t.Run("active answer to "+name, func(t *testing.T) {
				wantMembers(t, f.wantActive(t, caller, "access token", g.Access), "Bearer")
				wantMembers(t, f.wantActive(t, caller, "refresh token", g.Refresh), "refresh_token")
			})
		}

		t.Run("inactive tokens reveal nothing", func(t *testing.T) {
			for name, tok := range map[string]string{
				"garbage":          "garbage",
				"broken JWT":       g.Access[:len(g.Access)-4] + "AAAA",
				"ID token":         g.ID,
				"fake refresh":     "ory_rt_AAAA.BBBB",
				"oversized string": strings.Repeat("a", 10000),
			} {
				f.wantInactive(t, rs, name, tok)
			}
		})

		t.Run("caller authentication", func(t *testing.T) {
			cases := []struct {
				name string
				c    registeredClient
			}{
				{"no authentication", registeredClient{}},
				{"public client", public},
				{"wrong secret", registeredClient{ID: rs.ID, Secret: "wrong-secret"}},
			}
			for _, tc := range cases {
				status, hdr, body, err := postClientForm(http.DefaultClient, f.ts.PublicURL, "/oauth2/introspect", tc.c, url.Values{"token": {g.Access}})
				if err != nil {
					t.Fatal(err)
				}
				if status != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) || hdr.Get("WWW-Authenticate") == "" {
					t.Errorf("introspect with %s: %d %q %s, want 401 invalid_client with WWW-Authenticate", tc.name, status, hdr.Get("WWW-Authenticate"), body)
				}
				if strings.Contains(string(body), "active") {
					t.Errorf("introspect with %s answered about the token: %s", tc.name, body)
				}
			}
		})
	})
}

// TestSignInUserinfo: /userinfo (OIDC Core §5.3) by GET and POST, scope
// gating of claims, and tokens that may not use it.
func TestSignInUserinfo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		g := f.signIn(t, a)
		userinfo := func(method, header string, form url.Values) (int, http.Header, map[string]any) {
			t.Helper()
			var body io.Reader
			if form != nil {
				body = strings.NewReader(form.Encode())
			}
			req, _ := http.NewRequest(method, f.ts.PublicURL+"/userinfo", body)
			if form != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			return resp.StatusCode, resp.Header, m
		}
		full := map[string]any{"sub": f.userID, "email": "alice@example.com", "email_verified": false,
			"name": "Alice Liddell", "preferred_username": testUsername}
		same := func(got, want map[string]any) bool {
			if len(got) != len(want) {
				return false
			}
			for k, v := range want {
				if got[k] != v {
					return false
				}
			}
			return true
		}
		for name, call := range map[string]func() (int, http.Header, map[string]any){
			"GET with bearer":            func() (int, http.Header, map[string]any) { return userinfo(http.MethodGet, "Bearer "+g.Access, nil) },
			"GET with lower-case scheme": func() (int, http.Header, map[string]any) { return userinfo(http.MethodGet, "bearer "+g.Access, nil) },
			"POST with bearer":           func() (int, http.Header, map[string]any) { return userinfo(http.MethodPost, "Bearer "+g.Access, nil) },
			"POST with access_token": func() (int, http.Header, map[string]any) {
				return userinfo(http.MethodPost, "", url.Values{"access_token": {g.Access}})
			},
		} {
			if status, _, m := call(); status != http.StatusOK || !same(m, full) {
				t.Errorf("%s: %d %v, want 200 %v", name, status, m, full)
			}
		}
		if status, _, m := userinfo(http.MethodPost, "Bearer "+g.Access, url.Values{"access_token": {g.Access}}); status != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Errorf("token in header and body: %d %v, want 400 invalid_request", status, m)
		}
		if status, hdr, _ := userinfo(http.MethodGet, "", nil); status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("no token: %d %q, want 401 with WWW-Authenticate Bearer", status, hdr.Get("WWW-Authenticate"))
		}
		for name, tok := range map[string]string{"ID token": g.ID, "refresh token": g.Refresh, "garbage": "abc.def.ghi"} {
			if status, hdr, _ := userinfo(http.MethodGet, "Bearer "+tok, nil); status != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), "invalid_token") {
				t.Errorf("%s as bearer: %d %q, want 401 invalid_token", name, status, hdr.Get("WWW-Authenticate"))
			}
		}

		t.Run("claims follow the granted scopes", func(t *testing.T) {
			cases := []struct {
				scope string
				want  map[string]any
			}{
				{"openid", map[string]any{"sub": f.userID}},
				{"openid email", map[string]any{"sub": f.userID, "email": "alice@example.com", "email_verified": false}},
				{"openid profile", map[string]any{"sub": f.userID, "name": "Alice Liddell", "preferred_username": testUsername}},
			}
			for _, tc := range cases {
				g := f.signIn(t, a, oauth2.SetAuthURLParam("scope", tc.scope))
				if status, _, m := userinfo(http.MethodGet, "Bearer "+g.Access, nil); status != http.StatusOK || !same(m, tc.want) {
					t.Errorf("scope %q: %d %v, want 200 %v", tc.scope, status, m, tc.want)
				}
			}
		})

		t.Run("tokens without openid", func(t *testing.T) {
			cc := f.ts.createClient(map[string]any{"client_name": "Machine", "scope": "openid api"})
			verifier := oauth2.GenerateVerifier()
			code := f.authorize(t, a, verifier, oauth2.SetAuthURLParam("scope", "api:read"))
			noOpenID := f.exchange(t, code, verifier)
			if noOpenID.Status != http.StatusOK {
				t.Fatalf("exchange without openid: %s", noOpenID)
			}
			for name, tok := range map[string]string{
				"client_credentials token with scope openid": f.ccToken(t, cc, "openid", "api"),
				"user token without openid":                  noOpenID.AccessToken,
			} {
				status, hdr, m := userinfo(http.MethodGet, "Bearer "+tok, nil)
				if status != http.StatusForbidden || m["error"] != "insufficient_scope" || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("%s: %d %q %v, want 403 insufficient_scope", name, status, hdr.Get("WWW-Authenticate"), m)
				}
			}
		})
	})
}

// TestSignInLogsHoldNoSecrets: after a full sign-in with its failures
// (wrong password, replayed code, stolen refresh token, bad requests) no
// log line holds the password, a code, a token, a cookie or the client
// secret (contract "Logs").
func TestSignInLogsHoldNoSecrets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, map[string]string{"OAUTHD_REFRESH_REUSE_WINDOW": "0s"}, nil)
		secrets := map[string]string{"password": testPassword, "client secret": f.client.Secret}
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)

		// A wrong password first.
		u, _ := f.authURL(nil)
		login := a.open(u)
		lf := formWith(t, login, "password")
		const wrongPassword = "Tr0ub4dor&3-not-the-password"
		secrets["wrong password"] = wrongPassword
		a.submit(login, lf, loginValues(lf, testUsername, wrongPassword), nil)
		secrets["CSRF token"] = lf.Fields.Get("csrf_token")

		verifier := oauth2.GenerateVerifier()
		code := f.authorize(t, a, verifier)
		secrets["code"], secrets["code verifier"] = code, verifier
		secrets["session cookie"] = a.cookie(sessionCookie)
		first := f.exchange(t, code, verifier)
		if first.Status != http.StatusOK {
			t.Fatalf("exchange: %s", first)
		}
		secrets["access token"], secrets["refresh token"], secrets["ID token"] = first.AccessToken, first.RefreshToken, first.IDToken
		second := f.mustRefresh(t, first.RefreshToken)
		secrets["refreshed access token"], secrets["rotated refresh token"] = second.AccessToken, second.RefreshToken
		f.userinfoGet(t, second.AccessToken)
		f.introspectAs(t, f.client, second.AccessToken)
		f.introspectAs(t, f.client, second.RefreshToken)
		// Failures: a replayed refresh token (theft), a replayed code, bad
		// tokens at every endpoint.
		f.refresh(t, first.RefreshToken)
		f.exchange(t, code, verifier)
		f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code + "x"}, "redirect_uri": {f.redirect}, "code_verifier": {verifier}})
		f.refresh(t, second.RefreshToken)
		f.revokeAs(t, f.client, second.AccessToken)
		f.userinfoGet(t, second.AccessToken)

		// A new grant and its logout.
		g := f.signIn(t, a)
		secrets["second access token"], secrets["second refresh token"], secrets["second ID token"] = g.Access, g.Refresh, g.ID
		f.revokeAs(t, f.client, g.Refresh)
		a.send(http.MethodGet, f.ts.PublicURL+"/oauth2/logout?"+url.Values{"id_token_hint": {g.ID}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}}.Encode(), nil, nil)

		logs := f.ts.Logs.String()
		if !strings.Contains(logs, "refresh token reuse") {
			t.Fatalf("the flow did not run as planned (no reuse warning in the log):\n%s", logs)
		}
		for name, s := range secrets {
			if s == "" {
				t.Fatalf("secret %s is empty", name)
			}
			parts := []string{s}
			// The halves of an opaque token (key.signature) and the
			// signature of a JWT are secrets on their own.
			if i := strings.LastIndexByte(s, '.'); i > 0 {
				parts = append(parts, s[:i], s[i+1:])
			}
			for _, p := range parts {
				if len(p) >= 16 && strings.Contains(logs, p) {
					t.Errorf("the log holds the %s (%.12s…)", name, p)
				}
			}
		}
	})
}
