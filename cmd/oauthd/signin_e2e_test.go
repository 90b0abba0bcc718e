package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// signInFixture is a running server with one user and one confidential
// client registered for the authorization-code flow.
type signInFixture struct {
	ts       *testServer
	userID   string
	client   registeredClient
	redirect string
	oauth    *oauth2.Config
	provider *oidc.Provider
}

const (
	testUsername = "alice"
	testPassword = "correct horse battery staple"
	testRedirect = "http://127.0.0.1:9/callback"
)

func newSignInFixture(t *testing.T, b storagetest.Backend, env map[string]string, meta map[string]any) *signInFixture {
	t.Helper()
	ts := startServer(t, b.NewDSN(t), env)
	status, body := ts.adminDo(http.MethodPost, "/admin/users", map[string]any{
		"username": testUsername, "password": testPassword, "email": "alice@example.com", "name": "Alice Liddell"})
	if status != http.StatusCreated {
		t.Fatalf("create user: %d %s", status, body)
	}
	var u struct{ ID string }
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"client_name":               "Test App",
		"redirect_uris":             []string{testRedirect},
		"grant_types":               []string{"authorization_code", "refresh_token"},
		"response_types":            []string{"code"},
		"scope":                     "openid profile email offline_access api:read",
		"post_logout_redirect_uris": []string{"http://127.0.0.1:9/bye"},
	}
	for k, v := range meta {
		m[k] = v
	}
	c := ts.createClient(m)
	ctx := oidc.InsecureIssuerURLContext(context.Background(), ts.PublicURL)
	provider, err := oidc.NewProvider(ctx, ts.PublicURL)
	if err != nil {
		t.Fatalf("discovery through go-oidc: %v", err)
	}
	// The registered method only: with auto-detection x/oauth2 retries a
	// failed request with the secret in the body, and the answer tests see
	// is that retry's invalid_client instead of the real error.
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	cfg := &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		Endpoint:     endpoint,
		RedirectURL:  testRedirect,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
	}
	return &signInFixture{ts: ts, userID: u.ID, client: c, redirect: testRedirect, oauth: cfg, provider: provider}
}

// authorize runs one authorization request through agent a and returns the
// code, checking state and iss on the way back.
func (f *signInFixture) authorize(t *testing.T, a *agent, verifier string, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	const state = "state-0123456789"
	opts = append(opts, oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-0123456789"))
	back, resp, page := a.Do(f.oauth.AuthCodeURL(state, opts...))
	if back == nil {
		t.Fatalf("authorization ended on a page (%d): %s", resp.StatusCode, page)
	}
	q := back.Query()
	if q.Get("error") != "" {
		t.Fatalf("authorization error: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state || q.Get("iss") != f.ts.PublicURL {
		t.Fatalf("callback %s: want state %q and iss %q", back, state, f.ts.PublicURL)
	}
	if !strings.HasPrefix(back.String(), f.redirect+"?") {
		t.Fatalf("redirected to %s, want %s", back, f.redirect)
	}
	return q.Get("code")
}

func TestSignInAuthorizationCodeFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		ctx := context.Background()
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		verifier := oauth2.GenerateVerifier()
		code := f.authorize(t, a, verifier)
		if a.Pages["login"] != 1 || a.Pages["consent"] != 1 {
			t.Errorf("pages seen %v, want one login and one consent", a.Pages)
		}
		tok, err := f.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token despite offline_access")
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := f.provider.Verifier(&oidc.Config{ClientID: f.client.ID}).Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		var idClaims struct {
			Nonce    string `json:"nonce"`
			SID      string `json:"sid"`
			AuthTime int64  `json:"auth_time"`
			AtHash   string `json:"at_hash"`
		}
		if err := idt.Claims(&idClaims); err != nil {
			t.Fatal(err)
		}
		if idt.Subject != f.userID || idClaims.Nonce != "nonce-0123456789" || idClaims.SID == "" || idClaims.AuthTime == 0 || idClaims.AtHash == "" {
			t.Errorf("ID token claims: sub %q %+v", idt.Subject, idClaims)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
		_, at := verifyAccessToken(t, tok.AccessToken, fetchJWKS(t, f.ts))
		if at["sid"] != idClaims.SID || at["sub"] != f.userID || at["client_id"] != f.client.ID {
			t.Errorf("access token claims %v", at)
		}

		ui, err := f.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var uc struct {
			Name              string `json:"name"`
			PreferredUsername string `json:"preferred_username"`
		}
		_ = ui.Claims(&uc)
		if ui.Subject != f.userID || ui.Email != "alice@example.com" || uc.Name != "Alice Liddell" || uc.PreferredUsername != testUsername {
			t.Errorf("userinfo %+v %+v", ui, uc)
		}

		// Refresh rotates.
		tok.Expiry = tok.Expiry.Add(-24 * 3600e9)
		tok2, err := f.oauth.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
			t.Fatal("refresh did not rotate")
		}
		if _, ok := tok2.Extra("id_token").(string); !ok {
			t.Error("no ID token on refresh")
		}
		// The second sign-in at another request skips login and consent.
		a2pages := a.Pages["login"] + a.Pages["consent"]
		f.authorize(t, a, oauth2.GenerateVerifier())
		if a.Pages["login"]+a.Pages["consent"] != a2pages {
			t.Errorf("SSO: pages %v", a.Pages)
		}

		// Introspection by the client itself.
		intro := f.introspect(t, tok2.AccessToken)
		if intro["active"] != true || intro["sid"] != idClaims.SID {
			t.Errorf("introspect %v", intro)
		}
		// Reuse of the rotated refresh token outside the window (0s here
		// is not set, so use an old one twice after the window passes: the
		// original token was replaced; presenting it again inside the
		// window gets the same successor).
		tok3, err := f.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("retry within window: %v", err)
		}
		if tok3.RefreshToken != tok2.RefreshToken {
			t.Errorf("retry within the window got another refresh token")
		}
	})
}

func (f *signInFixture) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	resp := f.ts.postForm("/oauth2/introspect", url.Values{"token": {token}}.Encode(), f.client.ID, f.client.Secret)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %s", resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
