package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// TestSignInRefreshReuseDetection: presenting a rotated refresh token is
// theft (RFC 9700 §4.14.2) unless it is the parent of the valid token and
// within OAUTHD_REFRESH_REUSE_WINDOW; theft answers invalid_grant and
// revokes the whole grant session.
func TestSignInRefreshReuseDetection(t *testing.T) {
	tests := []struct {
		name   string
		window string
		// steps: rotate T1→T2 and (if twice) T2→T3, sleep, then present
		// the token named by present.
		twice   bool
		sleep   time.Duration
		present string // "T1" or "T2"
		theft   bool
	}{
		{name: "older ancestor within the window", window: "10s", twice: true, present: "T1", theft: true},
		{name: "parent after the window", window: "1s", twice: true, sleep: 1100 * time.Millisecond, present: "T2", theft: true},
		{name: "parent at once with no window", window: "0s", present: "T1", theft: true},
		{name: "parent within the window is a retry", window: "10s", twice: true, present: "T2", theft: false},
	}
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				f := newSignInFixture(t, b, map[string]string{"OAUTHD_REFRESH_REUSE_WINDOW": tc.window}, nil)
				g := f.signIn(t, newAgent(t, f.ts.PublicURL, testUsername, testPassword))
				tokens := map[string]string{"T1": g.Refresh}
				r2 := f.mustRefresh(t, g.Refresh)
				tokens["T2"] = r2.RefreshToken
				last := grant{Access: r2.AccessToken, Refresh: r2.RefreshToken, SID: g.SID}
				if tc.twice {
					r3 := f.mustRefresh(t, r2.RefreshToken)
					tokens["T3"] = r3.RefreshToken
					last = grant{Access: r3.AccessToken, Refresh: r3.RefreshToken, SID: g.SID}
				}
				distinct := map[string]bool{}
				for _, tok := range tokens {
					distinct[tok] = true
				}
				if len(distinct) != len(tokens) {
					t.Fatal("a refresh did not rotate")
				}
				time.Sleep(tc.sleep)
				ans := f.refresh(t, tokens[tc.present])
				if !tc.theft {
					if ans.Status != http.StatusOK || ans.RefreshToken != last.Refresh {
						t.Fatalf("retry of %s within the window: want 200 with the current token, got %s", tc.present, ans)
					}
					f.wantGrantLive(t, last)
					return
				}
				wantOAuthError(t, "reuse of "+tc.present, ans, http.StatusBadRequest, "invalid_grant")
				// The whole family is revoked: the newest token, its access
				// token, and the session in the admin list.
				f.wantGrantRevoked(t, last)
				for name, tok := range tokens {
					wantOAuthError(t, name+" after theft", f.refresh(t, tok), http.StatusBadRequest, "invalid_grant")
				}
			})
		}
	})
}

// TestSignInCodeReplay: a second exchange of the real code answers
// invalid_grant and revokes what the first exchange issued (RFC 6749
// §4.1.2). Unlike fosite's hollow test, the replay sends the very code,
// and the first access token is shown alive before and dead after.
func TestSignInCodeReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		ctx := context.Background()
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		verifier := oauth2.GenerateVerifier()
		code := f.authorize(t, a, verifier)
		if code == "" {
			t.Fatal("no code")
		}
		// Another client cannot redeem it (RFC 6749 §4.1.3), and its try
		// does not spend the code.
		other := f.ts.createClient(map[string]any{"client_name": "Other App", "redirect_uris": []string{testRedirect},
			"grant_types": []string{"authorization_code"}, "scope": "openid profile email offline_access"})
		wantOAuthError(t, "another client's exchange", f.tokenAs(t, other, url.Values{"grant_type": {"authorization_code"},
			"code": {code}, "redirect_uri": {f.redirect}, "code_verifier": {verifier}}), http.StatusBadRequest, "invalid_grant")
		tok, err := f.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		first := grant{Access: tok.AccessToken, Refresh: tok.RefreshToken}
		first.SID, _ = jwtPayload(t, first.Access)["sid"].(string)
		f.wantGrantLive(t, first)
		if status, _, body := f.userinfoGet(t, first.Access); status != http.StatusOK {
			t.Fatalf("userinfo before the replay: %d %s", status, body)
		}

		_, err = f.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != "invalid_grant" {
			t.Fatalf("second exchange of the same code: want 400 invalid_grant, got %v", err)
		}
		f.wantGrantRevoked(t, first)
		// A third try changes nothing and still fails the same way.
		wantOAuthError(t, "third exchange", f.exchange(t, code, verifier), http.StatusBadRequest, "invalid_grant")
	})
}

// TestSignInRefreshTokenBinding: a refresh token works only for its client
// and only as a refresh token, and a refresh may narrow the scope but not
// widen it (checklist RT3, RT4, RT7). None of these refusals is theft: the
// family stays intact.
func TestSignInRefreshTokenBinding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		other := f.ts.createClient(map[string]any{"client_name": "Other App", "redirect_uris": []string{testRedirect},
			"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid profile email offline_access api:read"})
		verifier := oauth2.GenerateVerifier()
		code := f.authorize(t, a, verifier)
		first := f.exchange(t, code, verifier)
		if first.Status != http.StatusOK {
			t.Fatalf("exchange: %s", first)
		}
		g := grant{Access: first.AccessToken, Refresh: first.RefreshToken, ID: first.IDToken}
		g.SID, _ = jwtPayload(t, g.Access)["sid"].(string)

		refreshForm := func(tok string, extra ...string) url.Values {
			v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}
			for i := 0; i+1 < len(extra); i += 2 {
				v.Set(extra[i], extra[i+1])
			}
			return v
		}
		cases := []struct {
			name   string
			c      registeredClient
			form   url.Values
			status int
			code   string
		}{
			{"another client's refresh token", other, refreshForm(g.Refresh), http.StatusBadRequest, "invalid_grant"},
			{"access token as refresh token", f.client, refreshForm(g.Access), http.StatusBadRequest, "invalid_grant"},
			{"ID token as refresh token", f.client, refreshForm(g.ID), http.StatusBadRequest, "invalid_grant"},
			{"code as refresh token", f.client, refreshForm(code), http.StatusBadRequest, "invalid_grant"},
			{"wider scope", f.client, refreshForm(g.Refresh, "scope", "openid api:read"), http.StatusBadRequest, "invalid_scope"},
		}
		for _, tc := range cases {
			wantOAuthError(t, tc.name, f.tokenAs(t, tc.c, tc.form), tc.status, tc.code)
		}
		f.wantGrantLive(t, g)
		narrow := f.tokenAs(t, f.client, refreshForm(g.Refresh, "scope", "openid offline_access"))
		if narrow.Status != http.StatusOK {
			t.Fatalf("narrower scope: %s", narrow)
		}
		if s := jwtPayload(t, narrow.AccessToken)["scope"]; s != "openid offline_access" {
			t.Errorf("narrowed access token scope %v, want %q", s, "openid offline_access")
		}
	})
}
