package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/mux"

	"github.com/oauthd/oauthd/storage"
)

// The server wires the store itself into API.Sessions.
var _ sessionStore = (*storage.Store)(nil)

const testAdminToken = "sessions-admin-token-0123456789"

// sessNow is the admin API's clock in these tests.
var sessNow = time.Date(2031, time.March, 1, 12, 0, 0, 0, time.UTC)

// zoneTest checks that times written in another zone come back as UTC.
var zoneTest = time.FixedZone("UTC+05:30", 5*3600+30*60)

// sessionFixture is a migrated SQLite store with three users and the admin
// API over it:
//
//	u_alice: s-old, s-new live; s-revoked, s-idle, s-abs ended
//	u_bob:   s-bob live
//	u_carol: none
type sessionFixture struct {
	st      *storage.Store
	handler http.Handler
}

func openStore(t *testing.T) *storage.Store {
	t.Helper()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	st, err := storage.Open(context.Background(), storage.Config{DSN: dsn}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.MigrateUp(context.Background()); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	return st
}

func newSessionFixture(t *testing.T) *sessionFixture {
	t.Helper()
	st := openStore(t)
	ctx := t.Context()
	for _, id := range []string{"u_alice", "u_bob", "u_carol"} {
		if err := st.CreateUser(ctx, &storage.User{ID: id, Username: strings.TrimPrefix(id, "u_"), PasswordHash: "$argon2id$x"}); err != nil {
			t.Fatalf("CreateUser(%s): %v", id, err)
		}
	}
	gs := []storage.GrantSession{
		{
			ID: "s-old", UserID: "u_alice", ClientID: "web", Scope: "openid offline_access",
			CreatedAt: sessNow.Add(-3 * time.Hour).In(zoneTest), LastUsedAt: sessNow.Add(-2 * time.Hour),
			IdleExpiresAt: sessNow.Add(time.Hour), AbsoluteExpiresAt: sessNow.Add(21 * time.Hour),
		},
		{
			// The absolute expiry comes before the idle one: expires_at is it.
			ID: "s-new", UserID: "u_alice", ClientID: "cli", Scope: "openid",
			CreatedAt: sessNow.Add(-time.Hour), LastUsedAt: sessNow.Add(-30 * time.Minute).In(zoneTest),
			IdleExpiresAt: sessNow.Add(5 * time.Hour), AbsoluteExpiresAt: sessNow.Add(2 * time.Hour).In(zoneTest),
		},
		{
			ID: "s-revoked", UserID: "u_alice", ClientID: "web", Scope: "openid",
			CreatedAt: sessNow.Add(-time.Hour), IdleExpiresAt: sessNow.Add(time.Hour), AbsoluteExpiresAt: sessNow.Add(time.Hour),
			RevokedAt: ptrTime(sessNow.Add(-time.Minute)), RevokedReason: storage.ReasonUser,
		},
		{
			ID: "s-idle", UserID: "u_alice", ClientID: "web", Scope: "openid",
			CreatedAt: sessNow.Add(-time.Hour), IdleExpiresAt: sessNow, AbsoluteExpiresAt: sessNow.Add(time.Hour),
		},
		{
			ID: "s-abs", UserID: "u_alice", ClientID: "web", Scope: "openid",
			CreatedAt: sessNow.Add(-time.Hour), IdleExpiresAt: sessNow.Add(time.Hour), AbsoluteExpiresAt: sessNow.Add(-time.Second),
		},
		{
			ID: "s-bob", UserID: "u_bob", ClientID: "web", Scope: "openid",
			CreatedAt: sessNow.Add(-time.Hour), IdleExpiresAt: sessNow.Add(time.Hour), AbsoluteExpiresAt: sessNow.Add(time.Hour),
		},
	}
	for i := range gs {
		g := gs[i]
		g.AuthTime = g.CreatedAt
		if err := st.CreateGrantSession(ctx, &g); err != nil {
			t.Fatalf("CreateGrantSession(%s): %v", g.ID, err)
		}
	}
	for _, sid := range []string{"s-old", "s-new", "s-bob"} {
		rt := &storage.RefreshToken{Signature: "rt-" + sid, SessionID: sid, CreatedAt: sessNow.Add(-time.Minute), ExpiresAt: sessNow.Add(24 * time.Hour)}
		if err := st.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatalf("CreateRefreshToken(%s): %v", sid, err)
		}
	}
	return &sessionFixture{st: st, handler: sessionHandler(st)}
}

func sessionHandler(st sessionStore) http.Handler {
	r := mux.NewRouter()
	(&API{Sessions: st, Token: testAdminToken, Logger: slog.New(slog.DiscardHandler), now: func() time.Time { return sessNow }}).Register(r)
	return r
}

func ptrTime(t time.Time) *time.Time { return &t }

// call sends an admin request; token "" sends no Authorization header.
func call(t *testing.T, h http.Handler, method, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// wantAnswer fails unless rec has status and, for an error, the error code
// in the admin API's JSON error shape.
func wantAnswer(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if code == "" {
		return
	}
	var e map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	if e["error"] != code || e["error_description"] == "" || len(e) != 2 {
		t.Errorf("error body %s, want error %q with a description", rec.Body, code)
	}
}

// listSessions answers GET /admin/users/{user}/sessions as decoded JSON
// objects, checking the status.
func listSessions(t *testing.T, h http.Handler, user string) []map[string]any {
	t.Helper()
	rec := call(t, h, http.MethodGet, "/admin/users/"+user+"/sessions", testAdminToken)
	wantAnswer(t, rec, http.StatusOK, "")
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var out []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("list body %q: %v", rec.Body, err)
	}
	if out == nil {
		t.Fatalf("list body %q is not a JSON array", rec.Body)
	}
	return out
}

func sessionIDs(list []map[string]any) []string {
	ids := []string{}
	for _, s := range list {
		id, _ := s["id"].(string)
		ids = append(ids, id)
	}
	return ids
}

func getGrantSession(t *testing.T, st *storage.Store, id string) *storage.GrantSession {
	t.Helper()
	g, err := st.GetGrantSession(t.Context(), id)
	if err != nil {
		t.Fatalf("GetGrantSession(%s): %v", id, err)
	}
	return g
}

// wantRevoked fails unless session sid was revoked at at for reason, and its
// refresh token too.
func wantRevoked(t *testing.T, st *storage.Store, sid string, at time.Time, reason string) {
	t.Helper()
	g := getGrantSession(t, st, sid)
	if g.RevokedAt == nil || !g.RevokedAt.Equal(at) || g.RevokedReason != reason {
		t.Errorf("session %s: revoked_at %v, reason %q; want %s, %q", sid, g.RevokedAt, g.RevokedReason, at, reason)
	}
	if rt, err := st.GetRefreshToken(t.Context(), "rt-"+sid); err != nil || rt.State != storage.TokenRevoked {
		t.Errorf("refresh token of %s: %+v, %v; want revoked", sid, rt, err)
	}
}

func wantLive(t *testing.T, st *storage.Store, sid string) {
	t.Helper()
	if g := getGrantSession(t, st, sid); g.RevokedAt != nil {
		t.Errorf("session %s was revoked (%s, %q)", sid, g.RevokedAt, g.RevokedReason)
	}
	if rt, err := st.GetRefreshToken(t.Context(), "rt-"+sid); err != nil || rt.State != storage.TokenActive {
		t.Errorf("refresh token of %s: %+v, %v; want active", sid, rt, err)
	}
}

func TestSessionRoutesNeedTheAdminToken(t *testing.T) {
	f := newSessionFixture(t)
	routes := []struct{ method, path string }{
		{http.MethodGet, "/admin/users/u_alice/sessions"},
		{http.MethodDelete, "/admin/users/u_alice/sessions"},
		{http.MethodDelete, "/admin/sessions/s-old"},
		{http.MethodGet, "/admin/users/nobody/sessions"},
		{http.MethodDelete, "/admin/sessions/nope"},
		{http.MethodPost, "/admin/sessions/s-old"},
	}
	auths := []struct{ name, header string }{
		{"none", ""},
		{"wrong token", "Bearer not-the-token"},
		{"token prefix", "Bearer " + testAdminToken[:10]},
		{"basic scheme", "Basic " + testAdminToken},
		{"empty bearer", "Bearer "},
	}
	for _, r := range routes {
		for _, a := range auths {
			t.Run(r.method+" "+r.path+" "+a.name, func(t *testing.T) {
				req := httptest.NewRequest(r.method, r.path, nil)
				if a.header != "" {
					req.Header.Set("Authorization", a.header)
				}
				rec := httptest.NewRecorder()
				f.handler.ServeHTTP(rec, req)
				wantAnswer(t, rec, http.StatusUnauthorized, "unauthorized")
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
				}
			})
		}
	}
	// Nothing was revoked by the refused requests.
	for _, sid := range []string{"s-old", "s-new", "s-bob"} {
		wantLive(t, f.st, sid)
	}
}

func TestListUserSessions(t *testing.T) {
	f := newSessionFixture(t)
	tests := []struct {
		user string
		want []map[string]any
	}{
		{"u_alice", []map[string]any{
			// Newest first; ended sessions (revoked, idle- or
			// absolute-expired) are not listed.
			{
				"id": "s-new", "client_id": "cli", "scope": "openid",
				"created_at":   "2031-03-01T11:00:00Z",
				"last_used_at": "2031-03-01T11:30:00Z",
				"expires_at":   "2031-03-01T14:00:00Z", // absolute, before the idle expiry
			},
			{
				"id": "s-old", "client_id": "web", "scope": "openid offline_access",
				"created_at":   "2031-03-01T09:00:00Z",
				"last_used_at": "2031-03-01T10:00:00Z",
				"expires_at":   "2031-03-01T13:00:00Z", // idle, before the absolute expiry
			},
		}},
		{"u_bob", []map[string]any{{
			"id": "s-bob", "client_id": "web", "scope": "openid",
			"created_at": "2031-03-01T11:00:00Z", "last_used_at": "2031-03-01T11:00:00Z", "expires_at": "2031-03-01T13:00:00Z",
		}}},
		{"u_carol", []map[string]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			got := listSessions(t, f.handler, tc.user)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GET /admin/users/%s/sessions (-want +got):\n%s", tc.user, diff)
			}
		})
	}
	t.Run("empty list is []", func(t *testing.T) {
		rec := call(t, f.handler, http.MethodGet, "/admin/users/u_carol/sessions", testAdminToken)
		if body := strings.TrimSpace(rec.Body.String()); body != "[]" {
			t.Errorf("body %q, want []", body)
		}
	})
	t.Run("expired sessions drop out as the clock moves", func(t *testing.T) {
		h := sessionHandler(f.st)
		later := mux.NewRouter()
		(&API{Sessions: f.st, Token: testAdminToken, Logger: slog.New(slog.DiscardHandler), now: func() time.Time { return sessNow.Add(90 * time.Minute) }}).Register(later)
		if diff := cmp.Diff([]string{"s-new"}, sessionIDs(listSessions(t, later, "u_alice"))); diff != "" {
			t.Errorf("list 90 minutes later (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"s-new", "s-old"}, sessionIDs(listSessions(t, h, "u_alice"))); diff != "" {
			t.Errorf("list now (-want +got):\n%s", diff)
		}
	})
}

func TestRevokeSession(t *testing.T) {
	f := newSessionFixture(t)
	steps := []struct {
		name   string
		sid    string
		status int
		code   string
		// wantList is alice's list afterwards.
		wantList []string
	}{
		{"live session", "s-new", http.StatusNoContent, "", []string{"s-old"}},
		{"again: idempotent", "s-new", http.StatusNoContent, "", []string{"s-old"}},
		{"revoked before, by the user", "s-revoked", http.StatusNoContent, "", []string{"s-old"}},
		{"expired session", "s-idle", http.StatusNoContent, "", []string{"s-old"}},
		{"unknown sid", "s-nope", http.StatusNotFound, "not_found", []string{"s-old"}},
		{"sid of another case", "S-OLD", http.StatusNotFound, "not_found", []string{"s-old"}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			rec := call(t, f.handler, http.MethodDelete, "/admin/sessions/"+step.sid, testAdminToken)
			wantAnswer(t, rec, step.status, step.code)
			if step.status == http.StatusNoContent && rec.Body.Len() != 0 {
				t.Errorf("204 with body %q", rec.Body)
			}
			if diff := cmp.Diff(step.wantList, sessionIDs(listSessions(t, f.handler, "u_alice"))); diff != "" {
				t.Errorf("alice's sessions (-want +got):\n%s", diff)
			}
		})
	}
	wantRevoked(t, f.st, "s-new", sessNow, storage.ReasonAdmin)
	// A session revoked before keeps its first revocation.
	if g := getGrantSession(t, f.st, "s-revoked"); g.RevokedReason != storage.ReasonUser || !g.RevokedAt.Equal(sessNow.Add(-time.Minute)) {
		t.Errorf("s-revoked after an admin revoke: %s, %q; want the user's revocation kept", g.RevokedAt, g.RevokedReason)
	}
	if g := getGrantSession(t, f.st, "s-idle"); g.RevokedReason != storage.ReasonAdmin {
		t.Errorf("s-idle: reason %q, want %q", g.RevokedReason, storage.ReasonAdmin)
	}
	wantLive(t, f.st, "s-old")
	wantLive(t, f.st, "s-bob")
}

func TestRevokeUserSessions(t *testing.T) {
	f := newSessionFixture(t)
	steps := []struct {
		name   string
		user   string
		status int
		code   string
	}{
		{"user with sessions", "u_alice", http.StatusNoContent, ""},
		{"again: nothing left", "u_alice", http.StatusNoContent, ""},
		{"user without sessions", "u_carol", http.StatusNoContent, ""},
		{"unknown user", "u_nobody", http.StatusNotFound, "not_found"},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			rec := call(t, f.handler, http.MethodDelete, "/admin/users/"+step.user+"/sessions", testAdminToken)
			wantAnswer(t, rec, step.status, step.code)
			if step.status == http.StatusNoContent && rec.Body.Len() != 0 {
				t.Errorf("204 with body %q", rec.Body)
			}
		})
	}
	if ids := sessionIDs(listSessions(t, f.handler, "u_alice")); len(ids) != 0 {
		t.Errorf("alice's sessions after revoking all: %q", ids)
	}
	for _, sid := range []string{"s-old", "s-new"} {
		wantRevoked(t, f.st, sid, sessNow, storage.ReasonAdmin)
	}
	for _, sid := range []string{"s-idle", "s-abs"} {
		if g := getGrantSession(t, f.st, sid); g.RevokedAt == nil || g.RevokedReason != storage.ReasonAdmin {
			t.Errorf("expired session %s: %v, %q; want revoked too", sid, g.RevokedAt, g.RevokedReason)
		}
	}
	if g := getGrantSession(t, f.st, "s-revoked"); g.RevokedReason != storage.ReasonUser {
		t.Errorf("s-revoked: reason %q, want the user's kept", g.RevokedReason)
	}
	// Another user's sessions are untouched.
	wantLive(t, f.st, "s-bob")
	if diff := cmp.Diff([]string{"s-bob"}, sessionIDs(listSessions(t, f.handler, "u_bob"))); diff != "" {
		t.Errorf("bob's sessions (-want +got):\n%s", diff)
	}
}

func TestSessionRoutesNotFoundAndMethods(t *testing.T) {
	f := newSessionFixture(t)
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/admin/users/u_nobody/sessions", http.StatusNotFound, "not_found"},
		{http.MethodDelete, "/admin/users/u_nobody/sessions", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/admin/users/s-old/sessions", http.StatusNotFound, "not_found"}, // a sid is no user id
		{http.MethodDelete, "/admin/sessions/u_alice", http.StatusNotFound, "not_found"},  // nor the reverse
		{http.MethodDelete, "/admin/sessions/", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/admin/sessions", http.StatusNotFound, "not_found"},
		{http.MethodDelete, "/admin/users/u_alice/sessions/s-old", http.StatusNotFound, "not_found"},
		{http.MethodPost, "/admin/users/u_alice/sessions", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodPut, "/admin/users/u_alice/sessions", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodPatch, "/admin/users/u_alice/sessions", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodHead, "/admin/users/u_alice/sessions", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodGet, "/admin/sessions/s-old", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodPost, "/admin/sessions/s-old", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodPut, "/admin/sessions/s-old", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodPatch, "/admin/sessions/nope", http.StatusMethodNotAllowed, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := call(t, f.handler, tc.method, tc.path, testAdminToken)
			if tc.method == http.MethodHead {
				if rec.Code != tc.status {
					t.Fatalf("status %d, want %d", rec.Code, tc.status)
				}
				return
			}
			wantAnswer(t, rec, tc.status, tc.code)
		})
	}
	for _, sid := range []string{"s-old", "s-new", "s-bob"} {
		wantLive(t, f.st, sid)
	}
}

// TestSessionRoutesStorageDown: a database that cannot answer is 503
// temporarily_unavailable with Retry-After, never 404 or 204.
func TestSessionRoutesStorageDown(t *testing.T) {
	st := openStore(t)
	if err := st.CreateUser(t.Context(), &storage.User{ID: "u_alice", Username: "alice", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	h := sessionHandler(st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/admin/users/u_alice/sessions"},
		{http.MethodDelete, "/admin/users/u_alice/sessions"},
		{http.MethodDelete, "/admin/sessions/s-1"},
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			rec := call(t, h, r.method, r.path, testAdminToken)
			wantAnswer(t, rec, http.StatusServiceUnavailable, "temporarily_unavailable")
			if rec.Header().Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})
	}
}

// failingSessions fails the step named failAt with an unavailable database
// (a store whose user lookup works but whose next call does not).
type failingSessions struct {
	sessionStore
	failAt string
}

func (f failingSessions) ListActiveGrantSessions(ctx context.Context, userID string, now time.Time) ([]storage.GrantSession, error) {
	if f.failAt == "list" {
		return nil, storage.ErrUnavailable
	}
	return f.sessionStore.ListActiveGrantSessions(ctx, userID, now)
}

func (f failingSessions) RevokeUserGrantSessions(ctx context.Context, userID, reason string, now time.Time) (int64, error) {
	if f.failAt == "revoke all" {
		return 0, storage.ErrUnavailable
	}
	return f.sessionStore.RevokeUserGrantSessions(ctx, userID, reason, now)
}

// TestSessionRoutesStorageFailsAfterUserLookup: the user exists but the
// next storage call fails: 503, not a partial answer.
func TestSessionRoutesStorageFailsAfterUserLookup(t *testing.T) {
	f := newSessionFixture(t)
	tests := []struct {
		failAt, method string
	}{
		{"list", http.MethodGet},
		{"revoke all", http.MethodDelete},
	}
	for _, tc := range tests {
		t.Run(tc.failAt, func(t *testing.T) {
			h := sessionHandler(failingSessions{sessionStore: f.st, failAt: tc.failAt})
			rec := call(t, h, tc.method, "/admin/users/u_alice/sessions", testAdminToken)
			wantAnswer(t, rec, http.StatusServiceUnavailable, "temporarily_unavailable")
		})
	}
	wantLive(t, f.st, "s-old")
}
