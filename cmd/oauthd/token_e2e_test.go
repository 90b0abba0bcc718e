package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// fetchJWKS downloads and parses the served key set.
func fetchJWKS(t *testing.T, ts *testServer) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(ts.PublicURL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

// verifyAccessToken checks an access token the way an independent resource
// server would: go-jose, the served JWKS, typ at+jwt (RFC 9068 §4).
func verifyAccessToken(t *testing.T, token string, set jose.JSONWebKeySet) (header jose.Header, claims map[string]any) {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatalf("parse access token: %v", err)
	}
	header = jws.Signatures[0].Header
	if typ := header.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", typ)
	}
	keys := set.Key(header.KeyID)
	if header.KeyID == "" || len(keys) != 1 {
		t.Fatalf("kid %q not exactly once in JWKS", header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("signature does not verify against JWKS: %v", err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return header, claims
}

func TestClientCredentialsEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ts := startServer(t, b.NewDSN(t), map[string]string{"OAUTHD_ACCESS_TOKEN_TTL": "7m"})
		ctx := context.Background()

		tests := []struct {
			name      string
			meta      map[string]any
			style     oauth2.AuthStyle
			scopes    []string
			params    url.Values
			wantScope string
			wantAud   []string
		}{
			{
				name:      "basic auth, requested scope, no audience registered",
				meta:      map[string]any{"client_name": "billing", "grant_types": []string{"client_credentials"}, "scope": "invoices:read invoices:write"},
				style:     oauth2.AuthStyleInHeader,
				scopes:    []string{"invoices:read"},
				wantScope: "invoices:read",
				wantAud:   []string{ts.PublicURL},
			},
			{
				name:      "post auth, no scope requested gets registered scopes",
				meta:      map[string]any{"client_name": "reports", "scope": "a b", "token_endpoint_auth_method": "client_secret_post"},
				style:     oauth2.AuthStyleInParams,
				wantScope: "a b",
				wantAud:   []string{ts.PublicURL},
			},
			{
				name:      "registered audiences become aud",
				meta:      map[string]any{"client_name": "api-caller", "scope": "x", "audience": []string{"https://api.example", "https://other.example"}},
				style:     oauth2.AuthStyleInHeader,
				wantScope: "x",
				wantAud:   []string{"https://api.example", "https://other.example"},
			},
			{
				name:      "requested audience narrows aud",
				meta:      map[string]any{"client_name": "narrow", "scope": "x", "audience": []string{"https://api.example", "https://other.example"}},
				style:     oauth2.AuthStyleInHeader,
				params:    url.Values{"audience": {"https://other.example"}},
				wantScope: "x",
				wantAud:   []string{"https://other.example"},
			},
			{
				name:      "RFC 8707 resource narrows aud",
				meta:      map[string]any{"client_name": "resource", "scope": "x", "audience": []string{"https://api.example", "https://other.example"}},
				style:     oauth2.AuthStyleInHeader,
				params:    url.Values{"resource": {"https://api.example"}},
				wantScope: "x",
				wantAud:   []string{"https://api.example"},
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.createClient(tc.meta)
				cc := clientcredentials.Config{
					ClientID: c.ID, ClientSecret: c.Secret, TokenURL: ts.PublicURL + "/oauth2/token",
					Scopes: tc.scopes, AuthStyle: tc.style, EndpointParams: tc.params,
				}
				tok, err := cc.Token(ctx)
				if err != nil {
					t.Fatalf("token: %v", err)
				}
				if tok.TokenType != "Bearer" {
					t.Errorf("token_type = %q, want Bearer", tok.TokenType)
				}
				if got := tok.Extra("scope"); got != tc.wantScope {
					t.Errorf("response scope = %v, want %q", got, tc.wantScope)
				}
				if tok.RefreshToken != "" {
					t.Error("client_credentials must not issue a refresh token")
				}
				if d := time.Until(tok.Expiry); d < 6*time.Minute || d > 7*time.Minute+time.Second {
					t.Errorf("expires in %s, want about 7m", d)
				}

				header, claims := verifyAccessToken(t, tok.AccessToken, fetchJWKS(t, ts))
				if header.Algorithm != "ES256" {
					t.Errorf("alg = %s, want ES256 (the default)", header.Algorithm)
				}
				want := map[string]any{"iss": ts.PublicURL, "sub": c.ID, "client_id": c.ID, "scope": tc.wantScope}
				for k, v := range want {
					if claims[k] != v {
						t.Errorf("claim %s = %v, want %v", k, claims[k], v)
					}
				}
				var aud []string
				for _, a := range claims["aud"].([]any) {
					aud = append(aud, a.(string))
				}
				if !slices.Equal(aud, tc.wantAud) {
					t.Errorf("aud = %v, want %v", aud, tc.wantAud)
				}
				iat, exp := claims["iat"].(float64), claims["exp"].(float64)
				if exp-iat != 420 {
					t.Errorf("exp - iat = %v, want 420 (7m)", exp-iat)
				}
				if jti, _ := claims["jti"].(string); len(jti) < 16 {
					t.Errorf("jti %q too short", jti)
				}
				if _, has := claims["scp"]; has {
					t.Error("scp list claim present; RFC 9068 uses the scope string")
				}
			})
		}
	})
}

// tokenCall is one raw token-endpoint request and its expected answer.
type tokenCall struct {
	name        string
	method      string
	contentType string
	body        string
	basic       [2]string
	wantStatus  int
	wantError   string
}

func TestTokenEndpointRejectsBadRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ts := startServer(t, b.NewDSN(t), nil)
		basic := ts.createClient(map[string]any{"client_name": "basic", "scope": "read"})
		post := ts.createClient(map[string]any{"client_name": "post", "scope": "read", "token_endpoint_auth_method": "client_secret_post"})
		form := "application/x-www-form-urlencoded"
		cc := "grant_type=client_credentials"
		postAuth := "&client_id=" + url.QueryEscape(post.ID) + "&client_secret=" + url.QueryEscape(post.Secret)
		calls := []tokenCall{
			{name: "wrong secret", body: cc, basic: [2]string{basic.ID, "wrong"}, wantStatus: 401, wantError: "invalid_client"},
			{name: "unknown client", body: cc, basic: [2]string{"nobody", "x"}, wantStatus: 401, wantError: "invalid_client"},
			{name: "no authentication", body: cc, wantStatus: 401, wantError: "invalid_client"},
			{name: "basic client authenticating in body", body: cc + "&client_id=" + basic.ID + "&client_secret=" + url.QueryEscape(basic.Secret), wantStatus: 401, wantError: "invalid_client"},
			{name: "post client authenticating with basic", body: cc, basic: [2]string{post.ID, post.Secret}, wantStatus: 401, wantError: "invalid_client"},
			{name: "two authentication methods", body: cc + "&client_secret=" + url.QueryEscape(basic.Secret), basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "basic user differs from body client_id", body: cc + "&client_id=" + post.ID, basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "GET", method: http.MethodGet, wantStatus: 405, wantError: "invalid_request"},
			{name: "JSON body", contentType: "application/json", body: `{"grant_type":"client_credentials"}`, basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "multipart body", contentType: "multipart/form-data; boundary=x", body: "--x--", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "missing grant_type", body: "scope=read", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "empty body", body: "", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "grant_type twice", body: cc + "&" + cc, basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "scope twice", body: cc + "&scope=read&scope=read", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "password grant", body: "grant_type=password&username=a&password=b", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "unsupported_grant_type"},
			{name: "implicit grant", body: "grant_type=implicit", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "unsupported_grant_type"},
			{name: "space-joined grant types", body: "grant_type=client_credentials%20refresh_token", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "unsupported_grant_type"},
			{name: "wrong case grant type", body: "grant_type=Client_Credentials", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "unsupported_grant_type"},
			{name: "scope not registered", body: cc + "&scope=admin", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_scope"},
			{name: "audience not registered", body: cc + "&audience=https://evil.example", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_request"},
			{name: "resource not registered", body: cc + "&resource=https://evil.example", basic: [2]string{basic.ID, basic.Secret}, wantStatus: 400, wantError: "invalid_target"},
			{name: "oversized body", body: cc + "&scope=" + strings.Repeat("a", 70<<10), basic: [2]string{basic.ID, basic.Secret}, wantStatus: 413, wantError: "invalid_request"},
			{name: "SQL metacharacters in client id", body: cc, basic: [2]string{"' OR '1'='1", "x"}, wantStatus: 401, wantError: "invalid_client"},
			{name: "NUL in client id", body: cc, basic: [2]string{"a\x00b", "x"}, wantStatus: 401, wantError: "invalid_client"},
			{name: "invalid UTF-8 client id", body: cc + "&client_id=%C3%28&client_secret=x", wantStatus: 401, wantError: "invalid_client"},
			{name: "very long client id", body: cc, basic: [2]string{strings.Repeat("c", 10000), "x"}, wantStatus: 401, wantError: "invalid_client"},
			{name: "valid post auth works", body: cc + postAuth, wantStatus: 200},
		}
		for _, tc := range calls {
			t.Run(tc.name, func(t *testing.T) {
				method := tc.method
				if method == "" {
					method = http.MethodPost
				}
				req, err := http.NewRequest(method, ts.PublicURL+"/oauth2/token", strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				ct := tc.contentType
				if ct == "" {
					ct = form
				}
				req.Header.Set("Content-Type", ct)
				if tc.basic[0] != "" {
					req.SetBasicAuth(url.QueryEscape(tc.basic[0]), url.QueryEscape(tc.basic[1]))
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.wantStatus {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
				}
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					t.Errorf("Content-Type %q, want JSON", resp.Header.Get("Content-Type"))
				}
				if !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
					t.Errorf("Cache-Control %q lacks no-store", resp.Header.Get("Cache-Control"))
				}
				if tc.wantError == "" {
					return
				}
				var e struct {
					Error string `json:"error"`
				}
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatalf("error body is not JSON: %s", body)
				}
				if e.Error != tc.wantError {
					t.Errorf("error = %q, want %q (%s)", e.Error, tc.wantError, body)
				}
				if resp.StatusCode == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 without WWW-Authenticate: Basic (got %q)", resp.Header.Get("WWW-Authenticate"))
				}
				assertNoLeak(t, body)
			})
		}
	})
}

// TestConcurrentTokenRequestsHitTheDatabase sends 64 token requests at once
// with the client cache off, so every one looks its client up in the
// database: none may fail for want of a pooled connection.
func TestConcurrentTokenRequestsHitTheDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ts := startServer(t, b.NewDSN(t), map[string]string{"OAUTHD_CLIENT_CACHE_TTL": "0s", "OAUTHD_LOG_LEVEL": "warn"})
		var clients []registeredClient
		for i := 0; i < 16; i++ {
			clients = append(clients, ts.createClient(map[string]any{"client_name": "c", "scope": "s"}))
		}
		const n = 64
		start := make(chan struct{})
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			c := clients[i%len(clients)]
			go func() {
				<-start
				_, err := (&clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: ts.PublicURL + "/oauth2/token"}).Token(context.Background())
				errs <- err
			}()
		}
		close(start)
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Errorf("concurrent token request failed: %v", err)
			}
		}
	})
}
