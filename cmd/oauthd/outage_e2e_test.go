package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// TestDatabaseOutage closes the database under a running server: requests
// that need it answer 503 temporarily_unavailable (never invalid_client,
// fosite's answer for any failed client lookup), while clients already in
// the cache keep getting tokens, since issuing a JWT needs no database.
func TestDatabaseOutage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ts := startServer(t, b.NewDSN(t), map[string]string{"OAUTHD_CLIENT_CACHE_TTL": "1h"})
		cached := ts.createClient(map[string]any{"client_name": "cached", "scope": "s"})
		uncached := ts.createClient(map[string]any{"client_name": "uncached", "scope": "s"})
		ctx := context.Background()
		cc := clientcredentials.Config{ClientID: cached.ID, ClientSecret: cached.Secret, TokenURL: ts.PublicURL + "/oauth2/token"}
		if _, err := cc.Token(ctx); err != nil {
			t.Fatal(err)
		}

		ts.srv.store.Close()

		if _, err := cc.Token(ctx); err != nil {
			t.Errorf("cached client refused during the outage: %v", err)
		}
		resp := ts.postForm("/oauth2/token", "grant_type=client_credentials", uncached.ID, uncached.Secret)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != http.StatusServiceUnavailable || e.Error != "temporarily_unavailable" {
			t.Errorf("token for an uncached client: %d %s, want 503 temporarily_unavailable", resp.StatusCode, body)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		assertNoLeak(t, body)

		status, body := ts.adminDo(http.MethodGet, "/admin/clients", nil)
		if status != http.StatusServiceUnavailable {
			t.Errorf("admin list during outage: %d %s", status, body)
		}
		assertNoLeak(t, body)

		// JWKS and discovery are served from memory.
		if r := getJSON(t, ts.PublicURL+"/.well-known/jwks.json", nil); r.StatusCode != 200 {
			t.Errorf("JWKS during outage: %d", r.StatusCode)
		}
	})
}

// TestPruneJobDeletesExpiredRows: the background job removes expired rows
// and leaves live ones.
func TestPruneJobDeletesExpiredRows(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), map[string]string{"OAUTHD_PRUNE_INTERVAL": "1s"})
	ctx := context.Background()
	st := ts.srv.store
	if err := st.UseJTI(ctx, "expired", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.UseJTI(ctx, "live", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := st.SQLDB().QueryRowContext(ctx, "SELECT count(*) FROM used_jtis").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows after 10s with a 1s prune interval, want 1", count())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if used, err := st.JTIUsed(ctx, "live"); err != nil || !used {
		t.Errorf("the live row went: %v %v", used, err)
	}
}
