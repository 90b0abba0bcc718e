package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
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

// endpointProbe is how an advertised endpoint answers a request that carries
// no parameters and no credentials: proof that it exists (an unknown path
// answers 404 not_found) and is the endpoint its name promises.
type endpointProbe struct {
	path   string // the contract's path under the issuer
	method string
	status []int // acceptable answers
	json   bool  // the answer is a JSON object with an "error" member
	html   bool  // the answer is an HTML page (a browser endpoint)
}

var endpointProbes = map[string]endpointProbe{
	"authorization_endpoint": {path: "/oauth2/authorize", method: http.MethodGet, status: []int{http.StatusBadRequest}, html: true},
	// Without grant_type the request is malformed (400) or, checked first, unauthenticated (401).
	"token_endpoint":                        {path: "/oauth2/token", method: http.MethodPost, status: []int{http.StatusBadRequest, http.StatusUnauthorized}, json: true},
	"revocation_endpoint":                   {path: "/oauth2/revoke", method: http.MethodPost, status: []int{http.StatusBadRequest, http.StatusUnauthorized}, json: true},
	"introspection_endpoint":                {path: "/oauth2/introspect", method: http.MethodPost, status: []int{http.StatusUnauthorized}, json: true},
	"pushed_authorization_request_endpoint": {path: "/oauth2/par", method: http.MethodPost, status: []int{http.StatusBadRequest, http.StatusUnauthorized}, json: true},
	"userinfo_endpoint":                     {path: "/userinfo", method: http.MethodGet, status: []int{http.StatusUnauthorized}, json: true},
	// Without a hint the logout endpoint asks for confirmation (or shows an error page): anything but 404 and 5xx.
	"end_session_endpoint": {path: "/oauth2/logout", method: http.MethodGet, html: true},
	"jwks_uri":             {path: "/.well-known/jwks.json", method: http.MethodGet, status: []int{http.StatusOK}},
}

// probeEndpoint sends p's request to url and checks the answer.
func probeEndpoint(t *testing.T, name, url string, p endpointProbe) {
	t.Helper()
	var body io.Reader
	if p.method == http.MethodPost {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(p.method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if p.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	// Do not follow redirects: a redirect is an answer of the endpoint itself.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode >= 500 {
		t.Errorf("%s: %s %s answers %d: %s", name, p.method, url, resp.StatusCode, b)
		return
	}
	if len(p.status) > 0 && !slices.Contains(p.status, resp.StatusCode) {
		t.Errorf("%s: %s %s answers %d, want one of %v: %s", name, p.method, url, resp.StatusCode, p.status, b)
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case p.json:
		var e struct {
			Error string `json:"error"`
		}
		if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Errorf("%s: %s %s: want a JSON error, got %s %s", name, p.method, url, ct, b)
		}
	case p.html:
		if !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: %s %s: want an HTML page, got %s %s", name, p.method, url, ct, b)
		}
	}
	assertNoLeak(t, b)
}

// discoveryList reads a JSON array of strings from a discovery document.
func discoveryList(t *testing.T, doc map[string]any, key string) []string {
	t.Helper()
	raw, ok := doc[key].([]any)
	if !ok {
		t.Errorf("%s is %v, want an array of strings", key, doc[key])
		return nil
	}
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		s, ok := v.(string)
		if !ok {
			t.Errorf("%s holds %v, want strings", key, v)
			continue
		}
		out = append(out, s)
	}
	return out
}

// sameStringSet reports whether a and b hold the same strings, ignoring order.
func sameStringSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestDiscoveryAdvertisesOnlyWhatExists(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), nil)
	// Endpoints each document must advertise; the OpenID document adds
	// userinfo and end_session (OpenID Connect Discovery 1.0 §3 fields).
	oauthEndpoints := []string{"authorization_endpoint", "token_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint", "pushed_authorization_request_endpoint"}
	oidcEndpoints := append(slices.Clone(oauthEndpoints), "userinfo_endpoint", "end_session_endpoint")
	for path, required := range map[string][]string{"/.well-known/openid-configuration": oidcEndpoints, "/.well-known/oauth-authorization-server": oauthEndpoints} {
		t.Run(path, func(t *testing.T) {
			var doc map[string]any
			resp := getJSON(t, ts.PublicURL+path, &doc)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if doc["issuer"] != ts.PublicURL {
				t.Errorf("issuer %v, want %s", doc["issuer"], ts.PublicURL)
			}
			for _, k := range required {
				if _, ok := doc[k]; !ok {
					t.Errorf("%s is not advertised", k)
				}
			}
			// Every advertised endpoint is where the contract puts it and exists.
			for k, v := range doc {
				if !strings.HasSuffix(k, "_endpoint") && k != "jwks_uri" {
					continue
				}
				s, ok := v.(string)
				if !ok {
					t.Errorf("%s = %v is not a string", k, v)
					continue
				}
				p, known := endpointProbes[k]
				if !known {
					t.Errorf("advertises %s = %s, which this test does not know: add a probe for it", k, s)
					continue
				}
				if want := ts.PublicURL + p.path; s != want {
					t.Errorf("%s = %s, want %s", k, s, want)
					continue
				}
				probeEndpoint(t, k, s, p)
			}

			// The values match what the server does (the contract).
			if got, want := discoveryList(t, doc, "grant_types_supported"), []string{"authorization_code", "client_credentials", "refresh_token"}; !sameStringSet(got, want) {
				t.Errorf("grant_types_supported %v, want %v", got, want)
			}
			if got := discoveryList(t, doc, "response_types_supported"); !slices.Equal(got, []string{"code"}) {
				t.Errorf("response_types_supported %v, want [code] (no implicit or hybrid flows)", got)
			}
			if got := discoveryList(t, doc, "response_modes_supported"); !slices.Equal(got, []string{"query"}) {
				t.Errorf("response_modes_supported %v, want [query]", got)
			}
			if got := discoveryList(t, doc, "code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
				t.Errorf("code_challenge_methods_supported %v, want [S256] (plain is refused)", got)
			}
			if doc["authorization_response_iss_parameter_supported"] != true {
				t.Errorf("authorization_response_iss_parameter_supported = %v, want true (RFC 9207)", doc["authorization_response_iss_parameter_supported"])
			}
			if got, want := discoveryList(t, doc, "token_endpoint_auth_methods_supported"), []string{"client_secret_basic", "client_secret_post", "none"}; !sameStringSet(got, want) {
				t.Errorf("token_endpoint_auth_methods_supported %v, want %v", got, want)
			}
			// Introspection needs an authenticated client: never "none".
			if got, want := discoveryList(t, doc, "introspection_endpoint_auth_methods_supported"), []string{"client_secret_basic", "client_secret_post"}; !sameStringSet(got, want) {
				t.Errorf("introspection_endpoint_auth_methods_supported %v, want %v", got, want)
			}
			if got := discoveryList(t, doc, "scopes_supported"); !slices.Contains(got, "openid") || !slices.Contains(got, "offline_access") {
				t.Errorf("scopes_supported %v lacks openid or offline_access", got)
			}
			if path == "/.well-known/openid-configuration" {
				if got := discoveryList(t, doc, "subject_types_supported"); !slices.Equal(got, []string{"public"}) {
					t.Errorf("subject_types_supported %v, want [public]", got)
				}
				if got := discoveryList(t, doc, "id_token_signing_alg_values_supported"); !slices.Equal(got, []string{"RS256"}) {
					t.Errorf("id_token_signing_alg_values_supported %v, want [RS256] (the default)", got)
				}
			}
		})
	}
	t.Run("an unknown path answers 404, so the probes above mean something", func(t *testing.T) {
		resp, err := http.Get(ts.PublicURL + "/oauth2/does-not-exist")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown path: %d, want 404", resp.StatusCode)
		}
	})
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
