package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/mux"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/storage"
)

// memClients is an in-memory clientStore: fuzzing instruments every package
// for coverage, which makes the embedded SQLite far too slow to fuzz through
// (the storage has its own conformance suite).
type memClients struct {
	mu sync.Mutex
	m  map[string]storage.Client
}

func (s *memClients) CreateClient(_ context.Context, c *storage.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[c.ID]; ok {
		return storage.ErrConflict
	}
	s.m[c.ID] = *c
	return nil
}

func (s *memClients) GetClient(_ context.Context, id string) (*storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return &c, nil
}

func (s *memClients) ListClients(context.Context) ([]storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.Client, 0, len(s.m))
	for _, c := range s.m {
		out = append(out, c)
	}
	return out, nil
}

func (s *memClients) ModifyClient(_ context.Context, id string, change func(*storage.Client) error) (*storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	if !ok {
		return nil, storage.ErrNotFound
	}
	if err := change(&c); err != nil {
		return nil, err
	}
	s.m[id] = c
	return &c, nil
}

func (s *memClients) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *memClients) DeleteClient(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return storage.ErrNotFound
	}
	delete(s.m, id)
	return nil
}

// FuzzRegisterClient sends arbitrary JSON to POST /admin/clients: the answer
// is 201 with a client, or a 4xx RFC 7591 error; never a 5xx, and a refused
// body stores nothing.
func FuzzRegisterClient(f *testing.F) {
	st := &memClients{m: map[string]storage.Client{}}
	clients := NewClients(st, secret.NewHasher([]byte("fuzz-master-secret-0123456789-0123456789")), []string{"client_credentials"})
	r := mux.NewRouter()
	(&API{Clients: clients, Token: "fuzz-admin-token-0123", Logger: slog.New(slog.DiscardHandler)}).Register(r)
	handler := httpx.LimitBody(64 << 10)(r)
	for _, seed := range []string{
		`{"client_name":"a","scope":"x y"}`,
		`{"client_name":"a","redirect_uris":["https://c.example/cb"],"audience":["https://api"]}`,
		`{"client_name":"a","redirect_uris":["javascript:alert(1)"]}`,
		`{"client_name":"a","grant_types":["implicit"]}`,
		`{"client_name":"a","token_endpoint_auth_method":"none"}`,
		`{"client_id":"fixed","client_name":"a"}`,
		`{"client_id":"u_x","client_name":"a"}`,
		`{"client_name":{"nested":true}}`,
		`{"client_name":"a","skip_consent":"yes"}`,
		`{"client_name":"a","require_pushed_authorization_requests":true}`,
		`{"client_name":"a","require_pushed_authorization_requests":"yes"}`,
		`[1,2,3]`, `null`, `"string"`, `{}`, `{"a":1}{"b":2}`, "\xef\xbb\xbf{}", `{"client_name":"\ud800"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		before := st.count()
		req := httptest.NewRequest(http.MethodPost, "/admin/clients", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer fuzz-admin-token-0123")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		raw, _ := io.ReadAll(rec.Body)
		var answer map[string]any
		if err := json.Unmarshal(raw, &answer); err != nil {
			t.Fatalf("%d answer is not a JSON object: %q", rec.Code, raw)
		}
		after := st.count()
		switch {
		case rec.Code == http.StatusCreated:
			if answer["client_id"] == nil || after != before+1 {
				t.Fatalf("201 without a stored client: %s", raw)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if answer["error"] == nil || answer["error_description"] == nil || after != before {
				t.Fatalf("%d: %s (stored %d -> %d)", rec.Code, raw, before, after)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, raw)
		}
	})
}
