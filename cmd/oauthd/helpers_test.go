package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// TestMain lets tests run the real binary: with OAUTHD_TEST_MAIN=1 the test
// executable behaves as oauthd itself (see runMain).
func TestMain(m *testing.M) {
	if os.Getenv("OAUTHD_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a log sink tests can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer is a running oauthd on loopback.
type testServer struct {
	t          testing.TB
	cfg        *Config
	srv        *server
	PublicURL  string
	AdminURL   string
	AdminToken string
	Logs       *syncBuffer
	stop       context.CancelFunc
	done       chan error
	stopOnce   sync.Once
}

// envMap turns a map into a getenv function.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// startServer runs the real server wiring (start + serve, as `oauthd serve`
// does) on dsn. env adds or overrides OAUTHD_* settings.
func startServer(t testing.TB, dsn string, env map[string]string) *testServer {
	t.Helper()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	publicURL := "http://" + pub.Addr().String()
	all := map[string]string{
		"OAUTHD_DSN":         dsn,
		"OAUTHD_ISSUER":      publicURL,
		"OAUTHD_ADDR":        pub.Addr().String(),
		"OAUTHD_ADMIN_ADDR":  adm.Addr().String(),
		"OAUTHD_DATA_DIR":    t.TempDir(),
		"OAUTHD_ADMIN_TOKEN": "test-admin-token-0123456789",
		"OAUTHD_SECRET":      "test-secret-0123456789-0123456789-0123456789",
		"OAUTHD_LOG_LEVEL":   "debug",
		// The cheapest password hashing the configuration allows.
		"OAUTHD_PASSWORD_HASH_MEMORY": "8192", "OAUTHD_PASSWORD_HASH_ITERATIONS": "1", "OAUTHD_PASSWORD_HASH_PARALLELISM": "1",
	}
	for k, v := range env {
		all[k] = v
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addFlags(fs, true)
	cfg, err := loadConfig(fs, envMap(all))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := start(ctx, cfg, newLogger(cfg, logs), pub, adm)
	if err != nil {
		cancel()
		pub.Close()
		adm.Close()
		t.Fatalf("start: %v", err)
	}
	ts := &testServer{t: t, cfg: cfg, srv: srv, PublicURL: publicURL, AdminURL: "http://" + adm.Addr().String(),
		AdminToken: all["OAUTHD_ADMIN_TOKEN"], Logs: logs, stop: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.serve(ctx) }()
	t.Cleanup(ts.Stop)
	return ts
}

// Stop shuts the server down and waits for it (idempotent).
func (ts *testServer) Stop() {
	ts.stopOnce.Do(func() {
		ts.stop()
		select {
		case err := <-ts.done:
			if err != nil {
				ts.t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			ts.t.Error("server did not stop within 30s")
		}
	})
}

// adminDo calls the admin API with the admin token.
func (ts *testServer) adminDo(method, path string, body any) (int, []byte) {
	ts.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, ts.AdminURL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// registeredClient is what registration returned.
type registeredClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// createClient registers a client through the admin API; without
// grant_types it asks for client_credentials (RFC 7591's default is
// authorization_code, which needs redirect URIs).
func (ts *testServer) createClient(meta map[string]any) registeredClient {
	ts.t.Helper()
	if _, ok := meta["grant_types"]; !ok {
		meta["grant_types"] = []string{"client_credentials"}
	}
	status, body := ts.adminDo(http.MethodPost, "/admin/clients", meta)
	if status != http.StatusCreated {
		ts.t.Fatalf("create client: %d %s", status, body)
	}
	var c registeredClient
	if err := json.Unmarshal(body, &c); err != nil {
		ts.t.Fatal(err)
	}
	return c
}

// postForm sends a form to the public listener with optional basic auth.
func (ts *testServer) postForm(path string, form string, user, pass string) *http.Response {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.PublicURL+path, strings.NewReader(form))
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp
}

// forEachBackend runs fn once per database backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b storagetest.Backend)) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// leakPatterns must never appear in an error body (checklist S9).
var leakPatterns = []string{"panic", "runtime error", "nil pointer", "goroutine", ".go:", "sql:", "SQLSTATE", "pq:", "gorm", "error_debug", "EOF", "broken pipe"}

func assertNoLeak(t *testing.T, body []byte) {
	t.Helper()
	for _, p := range leakPatterns {
		if bytes.Contains(body, []byte(p)) {
			t.Errorf("response leaks %q: %s", p, body)
		}
	}
}
