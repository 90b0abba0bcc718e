package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthd/oauthd/storage"
	"github.com/oauthd/oauthd/storage/storagetest"
)

// t0 is where every fake clock starts: whole seconds, so times survive the
// round trip through every database's timestamp precision.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a goroutine-safe settable clock for Manager.SetClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	return t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var discardLogger = slog.New(slog.DiscardHandler)

// secretA and secretB are two different system secrets.
var (
	secretA = bytes.Repeat([]byte{0xA1}, 32)
	secretB = bytes.Repeat([]byte{0xB2}, 32)
)

// spyStore wraps a real store, counts calls and lets a test stall a list.
// The hooks are set before the manager is used concurrently and never after.
type spyStore struct {
	*storage.Store
	lists, updates atomic.Int64
	// afterList runs after the rows are read and before they are returned.
	afterList func()
	// afterUpdate runs after UpdateSigningKeys committed.
	afterUpdate func()
}

func (s *spyStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	s.lists.Add(1)
	recs, err := s.Store.ListSigningKeys(ctx)
	if s.afterList != nil {
		s.afterList()
	}
	return recs, err
}

func (s *spyStore) UpdateSigningKeys(ctx context.Context, decide func([]storage.SigningKey) (storage.KeyChange, error)) error {
	s.updates.Add(1)
	err := s.Store.UpdateSigningKeys(ctx, decide)
	if s.afterUpdate != nil {
		s.afterUpdate()
	}
	return err
}

// forEachBackend runs fn as a subtest on every configured database.
func forEachBackend(t *testing.T, fn func(t *testing.T, b storagetest.Backend)) {
	t.Helper()
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// openShared opens n stores (n "processes") on one fresh, migrated database.
func openShared(t *testing.T, b storagetest.Backend, n int) []*storage.Store {
	t.Helper()
	dsn := b.NewDSN(t)
	var out []*storage.Store
	for i := 0; i < n; i++ {
		st, err := storage.Open(context.Background(), storage.Config{DSN: dsn}, discardLogger)
		if err != nil {
			t.Fatalf("open %s: %v", b.Name, err)
		}
		t.Cleanup(func() { st.Close() })
		if i == 0 {
			if _, err := st.MigrateUp(context.Background()); err != nil {
				t.Fatalf("migrate: %v", err)
			}
		}
		out = append(out, st)
	}
	return out
}

func newManager(t testing.TB, cfg Config, st store, master []byte, clk *fakeClock) *Manager {
	t.Helper()
	m, err := New(cfg.WithDefaults(), st, master, discardLogger)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	m.SetClock(clk.Now)
	return m
}

func mustInit(t testing.TB, m *Manager) {
	t.Helper()
	if err := m.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
}

func mustTick(t testing.TB, m *Manager) {
	t.Helper()
	if err := m.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
}

func mustRotate(t testing.TB, m *Manager, immediate bool) map[string]string {
	t.Helper()
	infos, err := m.Rotate(context.Background(), immediate)
	if err != nil {
		t.Fatalf("Rotate(%v): %v", immediate, err)
	}
	out := map[string]string{}
	for _, in := range infos {
		out[in.Alg] = in.KID
	}
	return out
}

func rows(t testing.TB, st interface {
	ListSigningKeys(context.Context) ([]storage.SigningKey, error)
}) []storage.SigningKey {
	t.Helper()
	recs, err := st.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	return recs
}

func rowByKID(t testing.TB, recs []storage.SigningKey, kid string) storage.SigningKey {
	t.Helper()
	for _, r := range recs {
		if r.KID == kid {
			return r
		}
	}
	t.Fatalf("no stored key %s", kid)
	return storage.SigningKey{}
}

// activeKIDs maps every configured algorithm to the kid that signs it now.
func activeKIDs(t testing.TB, m *Manager) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, alg := range m.Config().algs() {
		k, err := m.Active(alg)
		if err != nil {
			t.Fatalf("Active(%s): %v", alg, err)
		}
		out[alg] = k.KID
	}
	return out
}

// tokenHeader decodes a compact JWS header without any JOSE library.
func tokenHeader(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	h := map[string]any{}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("header: %v", err)
	}
	return h
}

// jwksKIDs returns the kids of a JWKS document, sorted.
func jwksKIDs(t testing.TB, body []byte) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, body)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	sort.Strings(kids)
	return kids
}

func published(t testing.TB, m *Manager, kid string) bool {
	t.Helper()
	body, _ := m.JWKS()
	return slices.Contains(jwksKIDs(t, body), kid)
}

// verifyWithJWKS checks tok the way an independent resource server would:
// parse the JWKS with go-jose, pick the key the header names and verify
// with only that key's algorithm allowed.
func verifyWithJWKS(jwks []byte, tok string) ([]byte, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, err
	}
	return verifyWithSet(&set, tok)
}

func verifyWithSet(set *jose.JSONWebKeySet, tok string) ([]byte, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, err
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, err
	}
	ks := set.Key(h.Kid)
	if len(ks) != 1 {
		return nil, errors.New("kid " + h.Kid + " not in JWKS exactly once")
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(ks[0].Algorithm)})
	if err != nil {
		return nil, err
	}
	return jws.Verify(ks[0].Key)
}

// timeline drives one or more managers (processes on one database) through
// time and checks the rotation invariants at every step:
//   - every kid any manager signs with is published by every manager;
//   - every token signed less than RetireAfter ago still verifies, by every
//     manager and independently against every manager's JWKS;
//   - a manager's ETag changes exactly when its published kid set changes.
type timeline struct {
	t   *testing.T
	clk *fakeClock
	ttl time.Duration // token lifetime the invariants assume: RetireAfter
	ms  []*Manager

	toks     []signedToken
	last     []jwksState
	kids     map[string]bool // every kid that ever signed
	steps    int
	reported map[string]bool // manager/kid already reported, to keep failures short
}

type signedToken struct {
	tok, kid, alg string
	at            time.Time
	by            int
}

type jwksState struct {
	kids string
	etag string
}

func newTimeline(t *testing.T, clk *fakeClock, ttl time.Duration, ms ...*Manager) *timeline {
	return &timeline{t: t, clk: clk, ttl: ttl, ms: ms, last: make([]jwksState, len(ms)), kids: map[string]bool{}, reported: map[string]bool{}}
}

// step signs an access and an ID token with every manager at the current
// time and checks the invariants.
func (tl *timeline) step(label string) {
	t := tl.t
	t.Helper()
	now := tl.clk.Now()
	tl.steps++
	for i, m := range tl.ms {
		at, err := m.SignAccessToken([]byte(`{"n":"at"}`))
		if err != nil {
			t.Fatalf("%s: manager %d: SignAccessToken: %v", label, i, err)
		}
		id, err := m.SignIDToken([]byte(`{"n":"id"}`))
		if err != nil {
			t.Fatalf("%s: manager %d: SignIDToken: %v", label, i, err)
		}
		for _, tok := range []string{at, id} {
			h := tokenHeader(t, tok)
			kid, _ := h["kid"].(string)
			alg, _ := h["alg"].(string)
			tl.toks = append(tl.toks, signedToken{tok: tok, kid: kid, alg: alg, at: now, by: i})
			tl.kids[kid] = true
		}
	}
	for i, m := range tl.ms {
		body, etag := m.JWKS()
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(body, &set); err != nil {
			t.Fatalf("%s: manager %d: JWKS: %v", label, i, err)
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KeyID)
		}
		sort.Strings(kids)
		st := jwksState{kids: strings.Join(kids, ","), etag: etag}
		if tl.steps > 1 {
			prev := tl.last[i]
			if prev.kids != st.kids && prev.etag == st.etag {
				t.Errorf("%s: manager %d: published kids changed (%s → %s) but the ETag did not", label, i, prev.kids, st.kids)
			}
			if prev.kids == st.kids && prev.etag != st.etag {
				t.Errorf("%s: manager %d: published kids unchanged (%s) but the ETag changed", label, i, st.kids)
			}
		}
		tl.last[i] = st
		for _, s := range tl.toks {
			if now.Sub(s.at) >= tl.ttl {
				continue // expired: may be gone
			}
			key := fmt.Sprint(i, "/", s.kid)
			if tl.reported[key] {
				continue // one failure per manager and key is enough
			}
			fail := func(format string, args ...any) {
				t.Helper()
				tl.reported[key] = true
				t.Errorf(label+": "+format, args...)
			}
			if !slices.Contains(kids, s.kid) {
				fail("manager %d does not publish %s key %s, which signed a token %s ago (by manager %d)", i, s.alg, s.kid, now.Sub(s.at), s.by)
				continue
			}
			if _, err := verifyWithSet(&set, s.tok); err != nil {
				fail("token signed %s ago by %s does not verify against manager %d's JWKS: %v", now.Sub(s.at), s.kid, i, err)
			}
			if _, err := m.Verify(context.Background(), s.tok); err != nil {
				fail("manager %d: Verify of token signed %s ago by %s: %v", i, now.Sub(s.at), s.kid, err)
			}
		}
	}
}

// signers returns, for the tokens signed at exactly `at`, the kid per alg
// and manager.
func (tl *timeline) signersAt(at time.Time) map[string]map[int]string {
	out := map[string]map[int]string{}
	for _, s := range tl.toks {
		if s.at.Equal(at) {
			if out[s.alg] == nil {
				out[s.alg] = map[int]string{}
			}
			out[s.alg][s.by] = s.kid
		}
	}
	return out
}

// publishedKey returns the key kid if m publishes it now.
func publishedKey(m *Manager, kid string) (*Key, bool) {
	k, ok := m.current().published[kid]
	return k, ok
}
