package admin

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/internal/secret"
)

// clientFlags are the boolean members of the client metadata.
var clientFlags = []string{"skip_consent", "allow_introspection", "require_pushed_authorization_requests"}

// clientHandler is the admin API over a migrated SQLite store, as the server
// wires it, with the grant types the server implements.
func clientHandler(t *testing.T) http.Handler {
	t.Helper()
	clients := NewClients(openStore(t), secret.NewHasher([]byte("clients-test-master-secret-0123456789")),
		[]string{"authorization_code", "client_credentials", "refresh_token"})
	r := mux.NewRouter()
	(&API{Clients: clients, Token: testAdminToken, Logger: slog.New(slog.DiscardHandler)}).Register(r)
	return httpx.LimitBody(64 << 10)(r)
}

// callJSON sends body (nil: none) with the admin token and decodes the answer.
func callJSON(t *testing.T, h http.Handler, method, path string, body any) (int, map[string]any, []map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw := rec.Body.Bytes()
	var obj map[string]any
	var list []map[string]any
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, raw)
		}
	} else if len(raw) > 0 {
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, raw)
		}
	}
	return rec.Code, obj, list
}

// codeClient is valid metadata of an authorization-code client.
func codeClient(extra map[string]any) map[string]any {
	m := map[string]any{
		"client_name":   "web",
		"grant_types":   []string{"authorization_code", "refresh_token"},
		"redirect_uris": []string{"https://app.example/cb"},
		"scope":         "openid offline_access",
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// wantFlags checks that metadata m has exactly the flags in set true and the
// others false (present, as every member is, not omitted).
func wantFlags(t *testing.T, where string, m map[string]any, set ...string) {
	t.Helper()
	for _, f := range clientFlags {
		v, ok := m[f]
		if !ok {
			t.Errorf("%s: %s missing: %v", where, f, m)
			continue
		}
		want := false
		for _, s := range set {
			want = want || s == f
		}
		if v != want {
			t.Errorf("%s: %s = %v, want %v", where, f, v, want)
		}
	}
}

// TestClientFlagsAreStoredSeparately registers one client per flag: each
// answer, GET and list entry shows that flag alone, so no flag is stored in
// another's column or dropped on the way.
func TestClientFlagsAreStoredSeparately(t *testing.T) {
	h := clientHandler(t)
	ids := map[string]string{}
	for _, f := range append([]string{""}, clientFlags...) {
		extra := map[string]any{}
		var set []string
		if f != "" {
			extra[f] = true
			set = []string{f}
		}
		status, created, _ := callJSON(t, h, http.MethodPost, "/admin/clients", codeClient(extra))
		if status != http.StatusCreated {
			t.Fatalf("create with %q: %d %v", f, status, created)
		}
		wantFlags(t, "create "+f, created, set...)
		id := created["client_id"].(string)
		ids[id] = f
		status, got, _ := callJSON(t, h, http.MethodGet, "/admin/clients/"+id, nil)
		if status != http.StatusOK {
			t.Fatalf("get: %d %v", status, got)
		}
		wantFlags(t, "get "+f, got, set...)
	}
	status, _, list := callJSON(t, h, http.MethodGet, "/admin/clients", nil)
	if status != http.StatusOK || len(list) != len(ids) {
		t.Fatalf("list: %d, %d clients, want %d", status, len(list), len(ids))
	}
	for _, m := range list {
		f, ok := ids[m["client_id"].(string)]
		if !ok {
			t.Fatalf("list holds an unknown client: %v", m)
		}
		var set []string
		if f != "" {
			set = []string{f}
		}
		wantFlags(t, "list "+f, m, set...)
	}
}

// TestRequirePARUpdate: PUT sets and clears require_pushed_authorization_requests
// like every member (a PUT replaces the registration: left out means false).
func TestRequirePARUpdate(t *testing.T) {
	h := clientHandler(t)
	status, created, _ := callJSON(t, h, http.MethodPost, "/admin/clients", codeClient(nil))
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, created)
	}
	id := created["client_id"].(string)
	wantFlags(t, "create", created)

	steps := []struct {
		name string
		body map[string]any
		set  []string
	}{
		{"set", codeClient(map[string]any{"require_pushed_authorization_requests": true}), []string{"require_pushed_authorization_requests"}},
		{"set with the other flags", codeClient(map[string]any{"require_pushed_authorization_requests": true, "skip_consent": true, "allow_introspection": true}), clientFlags},
		{"clear explicitly, keep the others", codeClient(map[string]any{"require_pushed_authorization_requests": false, "skip_consent": true, "allow_introspection": true}), []string{"skip_consent", "allow_introspection"}},
		{"set again", codeClient(map[string]any{"require_pushed_authorization_requests": true}), []string{"require_pushed_authorization_requests"}},
		{"left out is false", codeClient(nil), nil},
	}
	for _, s := range steps {
		status, put, _ := callJSON(t, h, http.MethodPut, "/admin/clients/"+id, s.body)
		if status != http.StatusOK {
			t.Fatalf("%s: PUT %d %v", s.name, status, put)
		}
		wantFlags(t, s.name+": PUT answer", put, s.set...)
		_, got, _ := callJSON(t, h, http.MethodGet, "/admin/clients/"+id, nil)
		wantFlags(t, s.name+": GET", got, s.set...)
	}
}

// TestClientFlagsMustBeBooleans: a flag of another JSON type is refused as
// invalid_client_metadata naming the member, on create and on update, and
// changes nothing.
func TestClientFlagsMustBeBooleans(t *testing.T) {
	h := clientHandler(t)
	status, created, _ := callJSON(t, h, http.MethodPost, "/admin/clients", codeClient(map[string]any{"require_pushed_authorization_requests": true}))
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, created)
	}
	id := created["client_id"].(string)
	for _, f := range clientFlags {
		for _, bad := range []any{"true", 1, []bool{true}, map[string]any{}} {
			for _, call := range []struct{ method, path string }{{http.MethodPost, "/admin/clients"}, {http.MethodPut, "/admin/clients/" + id}} {
				status, e, _ := callJSON(t, h, call.method, call.path, codeClient(map[string]any{f: bad}))
				if status != http.StatusBadRequest || e["error"] != "invalid_client_metadata" {
					t.Errorf("%s %s with %s=%v: %d %v, want 400 invalid_client_metadata", call.method, call.path, f, bad, status, e)
					continue
				}
				if d, _ := e["error_description"].(string); !strings.Contains(d, f) {
					t.Errorf("%s=%v: error_description %q does not name the member", f, bad, d)
				}
			}
		}
	}
	_, _, list := callJSON(t, h, http.MethodGet, "/admin/clients", nil)
	if len(list) != 1 {
		t.Fatalf("refused registrations stored clients: %d", len(list))
	}
	wantFlags(t, "after refused updates", list[0], "require_pushed_authorization_requests")
	// null is JSON's "not given": the member keeps its default.
	status, got, _ := callJSON(t, h, http.MethodPost, "/admin/clients", codeClient(map[string]any{"require_pushed_authorization_requests": nil}))
	if status != http.StatusCreated {
		t.Fatalf("null flag: %d %v", status, got)
	}
	wantFlags(t, "null flag", got)
}
