package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/keys"
	"github.com/oauthd/oauthd/storage"
	"github.com/oauthd/oauthd/storage/storagetest"
)

// FuzzTokenEndpoint throws arbitrary bodies, content types and
// Authorization headers at the token endpoint. Whatever comes in, the answer
// is JSON with either an access token (200) or an RFC 6749 error (4xx), marked
// no-store, and never a 5xx: the database is up, so nothing may be an
// internal error. The seeds run as part of the normal tests.
func FuzzTokenEndpoint(f *testing.F) {
	master := []byte("fuzz-master-secret-0123456789-0123456789")
	st := storagetest.Backends(f)[0].Open(f)
	km, err := keys.New(keys.Config{}.WithDefaults(), st, master, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	if err := km.Init(context.Background()); err != nil {
		f.Fatal(err)
	}
	hasher := secret.NewHasher(master)
	const id, sec = "fuzz-client", "fuzz-secret-fuzz-secret-fuzz-secret"
	if err := st.CreateClient(context.Background(), &storage.Client{ID: id, SecretHash: hasher.HashString(sec), GrantTypes: []string{"client_credentials"},
		Scope: "a b", Audience: []string{"https://api.example"}, TokenEndpointAuthMethod: AuthMethodBasic}); err != nil {
		f.Fatal(err)
	}
	p, err := New(Config{Issuer: "http://localhost:8080", AccessTokenTTL: time.Minute, ClientCacheTTL: time.Minute,
		TokenHMACKey: secret.Derive(master, secret.TokenHMAC), SealKey: secret.Derive(master, secret.Seal), AccessTokenAlg: keys.ES256, IDTokenAlg: keys.RS256, JWKSMaxAge: time.Minute},
		st, km, noBrowser{}, hasher, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	handler := httpx.LimitBody(64 << 10)(http.HandlerFunc(p.token))
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+sec))
	form := "application/x-www-form-urlencoded"
	for _, seed := range []struct{ ct, auth, body string }{
		{form, good, "grant_type=client_credentials"},
		{form, good, "grant_type=client_credentials&scope=a%20b&audience=https://api.example"},
		{form, good, "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example&resource=x"},
		{form, good, "grant_type=client_credentials&scope=c"},
		{form, "Basic !!!", "grant_type=client_credentials"},
		{form, "Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), "grant_type=client_credentials"},
		{form, "Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%zz")), "grant_type=client_credentials"},
		{form, "Bearer x", "grant_type=client_credentials&client_id=fuzz-client&client_secret=x"},
		{form, "", "grant_type=client_credentials&client_id=%00&client_secret=x"},
		{form, good, "grant_type=client_credentials&grant_type=client_credentials"},
		{form, good, "grant_type=authorization_code&code=x&redirect_uri=https://x"},
		{form, good, "grant_type=refresh_token&refresh_token=x"},
		{form, good, "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c"},
		{form, "", "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=eyJhbGciOiJub25lIn0.e30."},
		{form + "; charset=latin1", good, "grant_type=client_credentials"},
		{"multipart/form-data; boundary=x", good, "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--"},
		{"application/json", good, `{"grant_type":"client_credentials"}`},
		{"", good, ""},
		{form, good, "%%%&&&==="},
		{form, good, "grant_type=client_credentials;scope=a"},
		{form, good, "grant_type=client_credentials&scope=" + strings.Repeat("a ", 5000)},
	} {
		f.Add(seed.ct, seed.auth, seed.body)
	}
	f.Fuzz(func(t *testing.T, ct, auth, body string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for Content-Type %q, Authorization %q, body %q: %s", rec.Code, ct, auth, body, rec.Body)
		}
		if !strings.Contains(rec.Header().Get("Cache-Control"), "no-store") {
			t.Fatalf("no no-store on %d", rec.Code)
		}
		var answer map[string]any
		raw, _ := io.ReadAll(rec.Body)
		if err := json.Unmarshal(raw, &answer); err != nil {
			t.Fatalf("%d answer is not JSON: %q", rec.Code, raw)
		}
		_, hasToken := answer["access_token"]
		_, hasError := answer["error"]
		if (rec.Code == 200) != hasToken || (rec.Code != 200) != hasError {
			t.Fatalf("%d answer %s", rec.Code, raw)
		}
	})
}
