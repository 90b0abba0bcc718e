package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthd/oauthd/storage/storagetest"
)

func getJSON(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: not JSON: %s", url, b)
		}
	}
	return resp
}

func TestDiscoveryAdvertisesOnlyWhatExists(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), nil)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		t.Run(path, func(t *testing.T) {
			var doc map[string]any
			resp := getJSON(t, ts.PublicURL+path, &doc)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if doc["issuer"] != ts.PublicURL {
				t.Errorf("issuer %v, want %s", doc["issuer"], ts.PublicURL)
			}
			for k, v := range doc {
				s, ok := v.(string)
				if !ok || !strings.HasSuffix(k, "_endpoint") && k != "jwks_uri" {
					continue
				}
				if !strings.HasPrefix(s, ts.PublicURL+"/") {
					t.Errorf("%s = %s is not under the issuer", k, s)
					continue
				}
				// The endpoint exists: anything but 404 (the token endpoint answers GET with 405).
				r, err := http.Get(strings.Replace(s, ts.PublicURL, ts.PublicURL, 1))
				if err != nil {
					t.Fatal(err)
				}
				r.Body.Close()
				if r.StatusCode == http.StatusNotFound {
					t.Errorf("%s advertised at %s but answers 404", k, s)
				}
			}
			grants, _ := doc["grant_types_supported"].([]any)
			for _, g := range grants {
				if g == "password" || g == "implicit" {
					t.Errorf("advertises %v", g)
				}
			}
			for _, absent := range []string{"authorization_endpoint", "introspection_endpoint", "revocation_endpoint", "userinfo_endpoint"} {
				if _, ok := doc[absent]; ok {
					t.Errorf("advertises %s, which does not exist yet", absent)
				}
			}
		})
	}
	t.Run("issuer not taken from Host or X-Forwarded headers", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.PublicURL+"/.well-known/openid-configuration", nil)
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "evil") {
			t.Errorf("discovery reflects spoofed host: %s", b)
		}
	})
}

func TestJWKSCachingAndRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ts := startServer(t, b.NewDSN(t), map[string]string{"OAUTHD_JWKS_MAX_AGE": "120s"})
		resp := getJSON(t, ts.PublicURL+"/.well-known/jwks.json", nil)
		etag := resp.Header.Get("ETag")
		if etag == "" || !strings.HasPrefix(etag, `"`) {
			t.Fatalf("ETag %q", etag)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=120" {
			t.Errorf("Cache-Control %q", cc)
		}
		conditional := func(tag string) int {
			req, _ := http.NewRequest("GET", ts.PublicURL+"/.well-known/jwks.json", nil)
			req.Header.Set("If-None-Match", tag)
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			return r.StatusCode
		}
		if st := conditional(etag); st != http.StatusNotModified {
			t.Errorf("If-None-Match current ETag: %d, want 304", st)
		}
		if st := conditional(`"other", ` + etag); st != http.StatusNotModified {
			t.Errorf("If-None-Match list with current ETag: %d, want 304", st)
		}
		if st := conditional(`"stale"`); st != http.StatusOK {
			t.Errorf("If-None-Match stale: %d, want 200", st)
		}

		ctx := context.Background()
		c := ts.createClient(map[string]any{"client_name": "rot", "scope": "s"})
		cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: ts.PublicURL + "/oauth2/token"}
		old, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		oldHeader, _ := verifyAccessToken(t, old.AccessToken, fetchJWKS(t, ts))

		// A scheduled-style rotation publishes the new key but keeps signing with the old one.
		status, body := ts.adminDo(http.MethodPost, "/admin/keys/rotate", nil)
		if status != http.StatusOK {
			t.Fatalf("rotate: %d %s", status, body)
		}
		var pending struct {
			KID string `json:"kid"`
		}
		_ = json.Unmarshal(body, &pending)
		set := fetchJWKS(t, ts)
		if len(set.Key(pending.KID)) != 1 || len(set.Key(oldHeader.KeyID)) != 1 {
			t.Fatalf("JWKS must hold both the pending and the active key: %s", body)
		}
		tok, _ := cc.Token(ctx)
		if h, _ := verifyAccessToken(t, tok.AccessToken, set); h.KeyID != oldHeader.KeyID {
			t.Errorf("pending key %s signs before its activation", h.KeyID)
		}
		if st := conditional(etag); st != http.StatusOK {
			t.Errorf("ETag unchanged after a new key was published")
		}

		// An immediate rotation signs with the new key; the old token still verifies.
		status, body = ts.adminDo(http.MethodPost, "/admin/keys/rotate?immediate=true", nil)
		if status != http.StatusOK {
			t.Fatalf("rotate immediate: %d %s", status, body)
		}
		var now struct {
			KID string `json:"kid"`
		}
		_ = json.Unmarshal(body, &now)
		tok, _ = cc.Token(ctx)
		set = fetchJWKS(t, ts)
		if h, _ := verifyAccessToken(t, tok.AccessToken, set); h.KeyID != now.KID {
			t.Errorf("token signed by %s, want the immediately rotated %s", h.KeyID, now.KID)
		}
		verifyAccessToken(t, old.AccessToken, set)

		var list []struct{ KID, Status string }
		_, body = ts.adminDo(http.MethodGet, "/admin/keys", nil)
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		for _, k := range list {
			if strings.Contains(string(body), `"d":`) {
				t.Fatal("key list exposes private key material")
			}
			if k.KID == now.KID && k.Status != "active" {
				t.Errorf("rotated key status %s, want active", k.Status)
			}
		}
	})
}

func TestHealthEndpoints(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), nil)
	for _, base := range []string{ts.PublicURL, ts.AdminURL} {
		for _, p := range []string{"/health/alive", "/health/ready"} {
			var doc map[string]any
			if resp := getJSON(t, base+p, &doc); resp.StatusCode != 200 || doc["status"] != "ok" {
				t.Errorf("%s%s: %d %v", base, p, resp.StatusCode, doc)
			}
		}
	}
	// Readiness fails when the database goes away; liveness does not.
	ts.srv.store.Close()
	var doc map[string]any
	if resp := getJSON(t, ts.PublicURL+"/health/ready", &doc); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ready with a closed database: %d %v", resp.StatusCode, doc)
	}
	if resp := getJSON(t, ts.PublicURL+"/health/alive", nil); resp.StatusCode != 200 {
		t.Errorf("alive: %d", resp.StatusCode)
	}
}

func TestMetricsOnAdminListenerOnly(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), nil)
	c := ts.createClient(map[string]any{"client_name": "m", "scope": "s"})
	if _, err := (&clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: ts.PublicURL + "/oauth2/token"}).Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ts.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`oauthd_tokens_issued_total{grant_type="client_credentials"} 1`,
		`oauthd_http_requests_total{code="200",listener="public",method="POST",route="/oauth2/token"} 1`,
		`oauthd_http_request_duration_seconds_bucket`,
		`oauthd_signing_key_age_seconds{alg="ES256"}`,
		`go_sql_open_connections`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if r, _ := http.Get(ts.PublicURL + "/metrics"); r.StatusCode != http.StatusNotFound {
		t.Errorf("metrics on the public listener: %d", r.StatusCode)
	}
}

// TestLogsHoldNoSecrets drives the flows and then searches every log line
// for the secrets and tokens that passed through.
func TestLogsHoldNoSecrets(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), nil)
	c := ts.createClient(map[string]any{"client_name": "quiet", "scope": "s"})
	tok, err := (&clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: ts.PublicURL + "/oauth2/token"}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Failures too: a wrong secret, a secret in the query string.
	ts.postForm("/oauth2/token?client_secret=querysecret123", "grant_type=client_credentials", c.ID, "wrongsecret123").Body.Close()
	ts.Stop()
	logs := ts.Logs.String()
	if !strings.Contains(logs, "/oauth2/token") {
		t.Fatal("no access log line for the token endpoint")
	}
	for name, s := range map[string]string{
		"client secret": c.Secret, "access token": tok.AccessToken, "token signature": tok.AccessToken[strings.LastIndex(tok.AccessToken, ".")+1:],
		"admin token": ts.AdminToken, "wrong secret": "wrongsecret123", "query secret": "querysecret123",
		"system secret": ts.cfg.Secret,
	} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain the %s", name)
		}
	}
}
