package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthd/oauthd/storage/storagetest"
)

func TestAdminAPIAuthentication(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), nil)
	paths := []struct{ method, path string }{
		{"GET", "/admin/clients"}, {"POST", "/admin/clients"}, {"GET", "/admin/clients/x"},
		{"PUT", "/admin/clients/x"}, {"DELETE", "/admin/clients/x"}, {"GET", "/admin/keys"},
		{"POST", "/admin/keys/rotate"}, {"POST", "/admin/users"}, {"GET", "/admin/nothing-here"},
	}
	auths := []struct {
		name, header string
	}{
		{"none", ""},
		{"wrong token", "Bearer not-the-token"},
		{"token prefix", "Bearer " + ts.AdminToken[:10]},
		{"basic scheme", "Basic " + ts.AdminToken},
		{"empty bearer", "Bearer "},
	}
	for _, p := range paths {
		for _, a := range auths {
			t.Run(p.method+" "+p.path+" "+a.name, func(t *testing.T) {
				req, _ := http.NewRequest(p.method, ts.AdminURL+p.path, strings.NewReader("{}"))
				req.Header.Set("Content-Type", "application/json")
				if a.header != "" {
					req.Header.Set("Authorization", a.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("status %d, want 401", resp.StatusCode)
				}
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	t.Run("admin API is not on the public listener", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.PublicURL+"/admin/clients", nil)
		req.Header.Set("Authorization", "Bearer "+ts.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("bearer scheme is case-insensitive", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.AdminURL+"/admin/clients", nil)
		req.Header.Set("Authorization", "bearer "+ts.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	})
}

func TestAdminClientRegistrationValidation(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), nil)
	// ok is a valid machine client; code a valid authorization-code client.
	ok := map[string]any{"client_name": "ok", "scope": "a", "grant_types": []string{"client_credentials"}}
	code := map[string]any{"client_name": "web", "scope": "openid", "grant_types": []string{"authorization_code"}, "redirect_uris": []string{"https://c.example/cb"}}
	withIn := func(base map[string]any, kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	with := func(kv ...any) map[string]any { return withIn(ok, kv...) }
	withCode := func(kv ...any) map[string]any { return withIn(code, kv...) }
	tests := []struct {
		name       string
		body       any
		wantStatus int
		wantError  string
		// For 201: the registered grant and response types.
		wantGrants, wantResponses []string
	}{
		{"minimal", ok, 201, "", []string{"client_credentials"}, []string{}},
		{"name is optional (RFC 7591)", with("client_name", nil), 201, "", []string{"client_credentials"}, []string{}},
		{"name with control characters", with("client_name", "a\u0007b"), 400, "invalid_client_metadata", nil, nil},
		// RFC 7591 §2: grant_types defaults to authorization_code, which needs redirect URIs.
		{"no grant_types defaults to authorization_code", withCode("grant_types", nil), 201, "", []string{"authorization_code"}, []string{"code"}},
		{"no grant_types and no redirect_uris", map[string]any{"client_name": "x", "scope": "a"}, 400, "invalid_redirect_uri", nil, nil},
		{"authorization_code without redirect_uris", withCode("redirect_uris", nil), 400, "invalid_redirect_uri", nil, nil},
		{"authorization_code with empty redirect_uris", withCode("redirect_uris", []string{}), 400, "invalid_redirect_uri", nil, nil},
		{"authorization_code with refresh_token", withCode("grant_types", []string{"authorization_code", "refresh_token"}), 201, "", []string{"authorization_code", "refresh_token"}, []string{"code"}},
		{"public authorization_code client", withCode("token_endpoint_auth_method", "none"), 201, "", []string{"authorization_code"}, []string{"code"}},
		{"every grant", withCode("grant_types", []string{"authorization_code", "client_credentials", "refresh_token"}), 201, "", []string{"authorization_code", "client_credentials", "refresh_token"}, []string{"code"}},
		{"refresh_token without authorization_code", with("grant_types", []string{"client_credentials", "refresh_token"}), 400, "invalid_client_metadata", nil, nil},
		{"response type token", withCode("response_types", []string{"token"}), 400, "invalid_client_metadata", nil, nil},
		{"response type code without authorization_code", with("response_types", []string{"code"}), 400, "invalid_client_metadata", nil, nil},
		{"implicit grant", with("grant_types", []string{"implicit"}), 400, "invalid_client_metadata", nil, nil},
		{"password grant", with("grant_types", []string{"password"}), 400, "invalid_client_metadata", nil, nil},
		{"unknown auth method", with("token_endpoint_auth_method", "client_secret_jwt"), 400, "invalid_client_metadata", nil, nil},
		{"public client with client_credentials", with("token_endpoint_auth_method", "none"), 400, "invalid_client_metadata", nil, nil},
		{"caller-chosen secret", with("client_secret", "hunter2hunter2"), 400, "invalid_client_metadata", nil, nil},
		{"client_id in the user id namespace", with("client_id", "u_AAAAAAAAAAAAAAAAAAAAAA"), 400, "invalid_client_metadata", nil, nil},
		{"bad scope characters", with("scope", `a "b"`), 400, "invalid_client_metadata", nil, nil},
		{"grant_types wrong type", with("grant_types", "client_credentials"), 400, "invalid_client_metadata", nil, nil},
		{"skip_consent wrong type", withCode("skip_consent", "yes"), 400, "invalid_client_metadata", nil, nil},
		{"allow_introspection wrong type", with("allow_introspection", 1), 400, "invalid_client_metadata", nil, nil},
		{"require_pushed_authorization_requests wrong type", withCode("require_pushed_authorization_requests", "true"), 400, "invalid_client_metadata", nil, nil},
		{"redirect fragment", withCode("redirect_uris", []string{"https://c.example/cb#x"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect plain http", withCode("redirect_uris", []string{"http://c.example/cb"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect javascript", withCode("redirect_uris", []string{"javascript:alert(1)//https://c.example/cb"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect data", withCode("redirect_uris", []string{"data:text/html,hi"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect file", withCode("redirect_uris", []string{"file:///etc/passwd"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect wildcard", withCode("redirect_uris", []string{"https://*.c.example/cb"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect userinfo", withCode("redirect_uris", []string{"https://c.example@evil.example/cb"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect relative", withCode("redirect_uris", []string{"/cb"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect dot segment", withCode("redirect_uris", []string{"https://c.example/a/../cb"}), 400, "invalid_redirect_uri", nil, nil},
		{"one bad redirect among good ones", withCode("redirect_uris", []string{"https://c.example/cb", "http://c.example/cb"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect unsafe on a client_credentials client too", with("redirect_uris", []string{"javascript:alert(1)"}), 400, "invalid_redirect_uri", nil, nil},
		{"redirect loopback http ok", withCode("redirect_uris", []string{"http://127.0.0.1/cb"}), 201, "", []string{"authorization_code"}, []string{"code"}},
		{"redirect private-use scheme ok", withCode("redirect_uris", []string{"com.example.app:/cb"}), 201, "", []string{"authorization_code"}, []string{"code"}},
		{"post-logout redirect plain http", withCode("post_logout_redirect_uris", []string{"http://c.example/bye"}), 400, "invalid_redirect_uri", nil, nil},
		{"post-logout redirect ok", withCode("post_logout_redirect_uris", []string{"https://c.example/bye"}), 201, "", []string{"authorization_code"}, []string{"code"}},
		{"not JSON", "nope", 400, "invalid_client_metadata", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ts.adminDo(http.MethodPost, "/admin/clients", tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			if tc.wantStatus == http.StatusCreated {
				var got struct {
					GrantTypes    []string `json:"grant_types"`
					ResponseTypes []string `json:"response_types"`
				}
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.GrantTypes, tc.wantGrants) || !slices.Equal(got.ResponseTypes, tc.wantResponses) {
					t.Errorf("grant_types %q, response_types %q; want %q, %q: %s", got.GrantTypes, got.ResponseTypes, tc.wantGrants, tc.wantResponses, body)
				}
			}
			if tc.wantError == "" {
				return
			}
			var e struct{ Error, ErrorDescription string }
			_ = json.Unmarshal(body, &e)
			if e.Error != tc.wantError {
				t.Errorf("error %q, want %q: %s", e.Error, tc.wantError, body)
			}
			if !strings.Contains(string(body), "error_description") {
				t.Errorf("no error_description: %s", body)
			}
		})
	}

	raw := func(ct, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, ts.AdminURL+"/admin/clients", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.AdminToken)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, b := raw("text/plain", `{"client_name":"x"}`); st != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d %s, want 415", st, b)
	}
	if st, b := raw("application/json", `{"client_name":"`+strings.Repeat("x", 80<<10)+`"}`); st != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %s, want 413", st, b)
	}
	if st, b := raw("application/json", `{"client_name":"x"} {"client_name":"y"}`); st != http.StatusBadRequest {
		t.Errorf("two objects: %d %s, want 400", st, b)
	}

	t.Run("duplicate client_id is 409", func(t *testing.T) {
		ts.createClient(map[string]any{"client_id": "fixed-id", "client_name": "a"})
		status, body := ts.adminDo(http.MethodPost, "/admin/clients", with("client_id", "fixed-id", "client_name", "b"))
		if status != http.StatusConflict {
			t.Errorf("status %d, want 409: %s", status, body)
		}
	})
	t.Run("other methods are 405", func(t *testing.T) {
		for _, path := range []string{"/admin/clients", "/admin/keys"} {
			if status, b := ts.adminDo(http.MethodPatch, path, nil); status != http.StatusMethodNotAllowed {
				t.Errorf("PATCH %s: %d %s, want 405", path, status, b)
			}
		}
	})
	t.Run("unknown ids are 404", func(t *testing.T) {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			var body any
			if m == "PUT" {
				body = ok
			}
			if status, b := ts.adminDo(m, "/admin/clients/does-not-exist", body); status != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404: %s", m, status, b)
			}
		}
	})
	t.Run("stored metadata never shows the secret", func(t *testing.T) {
		c := ts.createClient(map[string]any{"client_name": "secretive", "scope": "a"})
		for _, path := range []string{"/admin/clients/" + c.ID, "/admin/clients"} {
			_, body := ts.adminDo(http.MethodGet, path, nil)
			if strings.Contains(string(body), c.Secret) || strings.Contains(string(body), "hmac-sha256") || strings.Contains(string(body), "secret_hash") {
				t.Errorf("%s shows the secret or its hash: %s", path, body)
			}
		}
	})
}

func TestAdminClientLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ts := startServer(t, b.NewDSN(t), nil)
		ctx := context.Background()
		c := ts.createClient(map[string]any{"client_name": "svc", "scope": "a b"})
		token := func(secret string) error {
			_, err := (&clientcredentials.Config{ClientID: c.ID, ClientSecret: secret, TokenURL: ts.PublicURL + "/oauth2/token"}).Token(ctx)
			return err
		}
		if err := token(c.Secret); err != nil {
			t.Fatalf("token with fresh client: %v", err)
		}

		// A PUT replaces the whole registration: without grant_types it asks
		// for RFC 7591's default, authorization_code, which needs redirect URIs.
		status, body := ts.adminDo(http.MethodPut, "/admin/clients/"+c.ID, map[string]any{"client_name": "svc2", "scope": "a"})
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"invalid_redirect_uri"`) {
			t.Fatalf("update without grant_types: %d %s, want 400 invalid_redirect_uri", status, body)
		}
		if err := token(c.Secret); err != nil {
			t.Fatalf("a refused update changed the client: %v", err)
		}

		// Update: the scope shrinks, and the cache on this process forgets the old client at once.
		status, body = ts.adminDo(http.MethodPut, "/admin/clients/"+c.ID, map[string]any{"client_name": "svc2", "scope": "a", "grant_types": []string{"client_credentials"}})
		if status != http.StatusOK || !strings.Contains(string(body), `"client_name":"svc2"`) {
			t.Fatalf("update: %d %s", status, body)
		}
		if _, err := (&clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: ts.PublicURL + "/oauth2/token", Scopes: []string{"b"}}).Token(ctx); err == nil {
			t.Error("scope removed by update still granted")
		}

		// Secret rotation without grace: the new secret works, the old one stops.
		status, body = ts.adminDo(http.MethodPost, "/admin/clients/"+c.ID+"/secret", nil)
		if status != http.StatusOK {
			t.Fatalf("rotate secret: %d %s", status, body)
		}
		var rotated registeredClient
		_ = json.Unmarshal(body, &rotated)
		if rotated.Secret == "" || rotated.Secret == c.Secret {
			t.Fatalf("rotation returned no new secret: %s", body)
		}
		if err := token(rotated.Secret); err != nil {
			t.Errorf("new secret refused: %v", err)
		}
		if err := token(c.Secret); err == nil {
			t.Error("old secret still accepted after rotation without grace")
		}

		// Rotation with grace keeps the previous secret working.
		_, body = ts.adminDo(http.MethodPost, "/admin/clients/"+c.ID+"/secret?grace=1h", nil)
		var graced registeredClient
		_ = json.Unmarshal(body, &graced)
		if err := token(rotated.Secret); err != nil {
			t.Errorf("previous secret refused during grace: %v", err)
		}
		if err := token(graced.Secret); err != nil {
			t.Errorf("newest secret refused: %v", err)
		}

		// Delete: tokens stop at once on this process.
		if status, body := ts.adminDo(http.MethodDelete, "/admin/clients/"+c.ID, nil); status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", status, body)
		}
		if err := token(graced.Secret); err == nil {
			t.Error("deleted client still gets tokens")
		}
	})
}

// TestTwoProcessesShareOneDatabase runs two servers on one database: a
// client deleted through one stops working on the other within the client
// cache lifetime, and a key rotated on one is published and used by both.
func TestTwoProcessesShareOneDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		dsn := b.NewDSN(t)
		env := map[string]string{"OAUTHD_CLIENT_CACHE_TTL": "300ms", "OAUTHD_KEY_RELOAD_INTERVAL": "200ms", "OAUTHD_KEY_PREPUBLISH": "0s", "OAUTHD_JWKS_MAX_AGE": "0s"}
		a := startServer(t, dsn, env)
		bsrv := startServer(t, dsn, env)
		ctx := context.Background()
		c := a.createClient(map[string]any{"client_name": "shared", "scope": "s"})
		tokenFrom := func(ts *testServer) (string, error) {
			tok, err := (&clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: ts.PublicURL + "/oauth2/token"}).Token(ctx)
			if err != nil {
				return "", err
			}
			return tok.AccessToken, nil
		}
		tokB, err := tokenFrom(bsrv)
		if err != nil {
			t.Fatalf("client created on A refused by B: %v", err)
		}
		// Both processes publish the same keys.
		if ja, jb := fetchJWKS(t, a), fetchJWKS(t, bsrv); len(ja.Keys) != len(jb.Keys) || ja.Keys[0].KeyID != jb.Keys[0].KeyID {
			t.Fatalf("processes publish different key sets: %d vs %d keys", len(ja.Keys), len(jb.Keys))
		}

		// Rotate on A, immediately: B must publish and sign with the new key soon.
		status, body := a.adminDo(http.MethodPost, "/admin/keys/rotate?immediate=true", nil)
		if status != http.StatusOK {
			t.Fatalf("rotate: %d %s", status, body)
		}
		var rot struct {
			KID string `json:"kid"`
		}
		_ = json.Unmarshal(body, &rot)
		deadline := time.Now().Add(5 * time.Second)
		for {
			tok, err := tokenFrom(bsrv)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := verifyAccessToken(t, tok, fetchJWKS(t, bsrv))
			if h.KeyID == rot.KID {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B still signs with %s, not the rotated %s", h.KeyID, rot.KID)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The token B issued before the rotation still verifies with either JWKS.
		verifyAccessToken(t, tokB, fetchJWKS(t, a))
		verifyAccessToken(t, tokB, fetchJWKS(t, bsrv))

		// Delete on A: B refuses the client within the cache lifetime.
		if status, _ := a.adminDo(http.MethodDelete, "/admin/clients/"+c.ID, nil); status != http.StatusNoContent {
			t.Fatalf("delete: %d", status)
		}
		if _, err := tokenFrom(a); err == nil {
			t.Error("A still accepts the client it deleted")
		}
		deadline = time.Now().Add(3 * time.Second)
		for {
			if _, err := tokenFrom(bsrv); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("B still accepts a deleted client after 3s (cache TTL 300ms)")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestAdminRequirePushedAuthorizationRequests: the RFC 9126 §6 flag is
// stored and returned by every admin call, and takes effect at once on this
// process: a plain authorization request of a client that must push is
// refused (redirected back with invalid_request), a pushed one proceeds to
// sign-in; clearing the flag with PUT lets plain requests through.
func TestAdminRequirePushedAuthorizationRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) { testRequirePAR(t, startServer(t, b.NewDSN(t), nil)) })
}

func testRequirePAR(t *testing.T, ts *testServer) {
	const redirect = "https://app.example/cb"
	meta := func(require bool) map[string]any {
		return map[string]any{"client_name": "pushy", "scope": "openid", "grant_types": []string{"authorization_code"},
			"redirect_uris": []string{redirect}, "require_pushed_authorization_requests": require}
	}
	flag := func(body []byte) any {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("not JSON: %s", body)
		}
		return m["require_pushed_authorization_requests"]
	}
	status, body := ts.adminDo(http.MethodPost, "/admin/clients", meta(true))
	if status != http.StatusCreated || flag(body) != true {
		t.Fatalf("create: %d %s", status, body)
	}
	var c registeredClient
	_ = json.Unmarshal(body, &c)
	if _, body := ts.adminDo(http.MethodGet, "/admin/clients/"+c.ID, nil); flag(body) != true {
		t.Errorf("GET: %s", body)
	}
	_, body = ts.adminDo(http.MethodGet, "/admin/clients", nil)
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 1 || list[0]["require_pushed_authorization_requests"] != true {
		t.Errorf("list: %s", body)
	}

	sum := sha256.Sum256([]byte("verifier-0123456789-0123456789-0123456789-0123"))
	params := url.Values{
		"client_id": {c.ID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"state-123"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// authorize answers where the authorization endpoint sends the browser.
	authorize := func(q url.Values) *url.URL {
		t.Helper()
		resp, err := noFollow.Get(ts.PublicURL + "/oauth2/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc, err := resp.Location()
		if (resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther) || err != nil {
			t.Fatalf("authorize: %d %s, want a redirect", resp.StatusCode, b)
		}
		return loc
	}
	wantRefused := func(step string) {
		t.Helper()
		loc := authorize(params)
		if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
			t.Fatalf("%s: plain request sent to %s, want the client's redirect URI with an error", step, loc)
		}
		q := loc.Query()
		if q.Get("error") != "invalid_request" || q.Get("state") != "state-123" || q.Get("iss") != ts.PublicURL || q.Has("code") {
			t.Errorf("%s: plain request answered %s, want error=invalid_request with state and iss", step, loc)
		}
	}
	wantSignIn := func(step string, q url.Values) {
		t.Helper()
		base, _ := url.Parse(ts.PublicURL + "/oauth2/authorize")
		loc := base.ResolveReference(authorize(q))
		if loc.Scheme+"://"+loc.Host+loc.Path != ts.PublicURL+"/login" || loc.Query().Has("error") {
			t.Errorf("%s: sent to %s, want this server's sign-in page", step, loc)
		}
	}
	wantRefused("flag set at registration")

	// The pushed request proceeds.
	resp := ts.postForm("/oauth2/par", params.Encode(), c.ID, c.Secret)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var pushed struct {
		RequestURI string `json:"request_uri"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &pushed) != nil || pushed.RequestURI == "" {
		t.Fatalf("PAR: %d %s", resp.StatusCode, b)
	}
	wantSignIn("pushed request", url.Values{"client_id": {c.ID}, "request_uri": {pushed.RequestURI}})

	// PUT clears the flag: plain requests proceed at once.
	status, body = ts.adminDo(http.MethodPut, "/admin/clients/"+c.ID, meta(false))
	if status != http.StatusOK || flag(body) != false {
		t.Fatalf("PUT false: %d %s", status, body)
	}
	if _, body := ts.adminDo(http.MethodGet, "/admin/clients/"+c.ID, nil); flag(body) != false {
		t.Errorf("GET after PUT false: %s", body)
	}
	wantSignIn("flag cleared", params)

	// And sets it again.
	if status, body := ts.adminDo(http.MethodPut, "/admin/clients/"+c.ID, meta(true)); status != http.StatusOK || flag(body) != true {
		t.Fatalf("PUT true: %d %s", status, body)
	}
	wantRefused("flag set by PUT")
}
