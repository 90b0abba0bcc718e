package storagetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oauthd/oauthd/storage"
)

// Run is the storage conformance suite (in the spirit of dex's
// storage/conformance): every case runs as a subtest on a fresh store from
// open, which must return an empty, migrated store that is closed when the
// test ends. Backend.Open does exactly that:
//
//	for _, b := range storagetest.Backends(t) {
//		t.Run(b.Name, func(t *testing.T) { storagetest.Run(t, b.Open) })
//	}
func Run(t *testing.T, open func(testing.TB) *storage.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s *storage.Store)
	}{
		{"ClientCreateGet", testClientCreateGet},
		{"ClientListOrder", testClientListOrder},
		{"ClientUpdate", testClientUpdate},
		{"ClientDelete", testClientDelete},
		{"ClientModifyConcurrent", testClientModifyConcurrent},
		{"Users", testUsers},
		{"PruneExpired", testPruneExpired},
		{"GrantSessionCreateGet", testGrantSessionCreateGet},
		{"GrantSessionListActive", testGrantSessionListActive},
		{"GrantSessionRevoke", testGrantSessionRevoke},
		{"GrantSessionTouch", testGrantSessionTouch},
		{"RefreshTokenCreate", testRefreshTokenCreate},
		{"RefreshTokenOneActivePerSessionInDB", testRefreshTokenOneActivePerSessionInDB},
		{"RefreshTokenRotateOutcomes", testRefreshTokenRotateOutcomes},
		{"RefreshTokenRotateConcurrent", testRefreshTokenRotateConcurrent},
		{"RevokeUserWhileRotating", testRevokeUserWhileRotating},
		{"RefreshTokenRotationChain", testRefreshTokenRotationChain},
		{"RefreshTokenRotateOtherClient", testRefreshTokenRotateOtherClient},
		{"RefreshTokenChildInheritsRequestData", testRefreshTokenChildInheritsRequestData},
		{"PruneRefreshTokensAndSessions", testPruneRefreshTokensAndSessions},
		{"AuthorizationCodeCreateGetInvalidate", testAuthorizationCodeCreateGetInvalidate},
		{"AuthorizationCodeInvalidateConcurrent", testAuthorizationCodeInvalidateConcurrent},
		{"AuthorizationCodeRedeem", testAuthorizationCodeRedeem},
		{"AuthorizationCodeRedeemConcurrent", testAuthorizationCodeRedeemConcurrent},
		{"AuthorizationCodeRedeemMixed", testAuthorizationCodeRedeemMixed},
		{"CodeRequests", testCodeRequests},
		{"PARCreateTake", testPARCreateTake},
		{"PARExpiry", testPARExpiry},
		{"PARTakeConcurrent", testPARTakeConcurrent},
		{"AccessTokenDenylist", testAccessTokenDenylist},
		{"AccessTokenStatus", testAccessTokenStatus},
		{"AuthorizationCodeGetConcurrent", testAuthorizationCodeGetConcurrent},
		{"BrowserSessionCreateGetTouch", testBrowserSessionCreateGetTouch},
		{"BrowserSessionEnd", testBrowserSessionEnd},
		{"ConsentGrantGetDelete", testConsentGrantGetDelete},
		{"ConsentCovers", testConsentCovers},
		{"PruneAuthorizationTables", testPruneAuthorizationTables},
		{"ClientNotFound", testClientNotFound},
		{"ClientDuplicateCreate", testClientDuplicateCreate},
		{"ClientEmptyAndNilSlices", testClientEmptyAndNilSlices},
		{"ClientUnusualIDs", testClientUnusualIDs},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"TimeOrderingAcrossZones", testTimeOrderingAcrossZones},
		{"SigningKeysAddAndList", testSigningKeysAddAndList},
		{"SigningKeysRetireAndDelete", testSigningKeysRetireAndDelete},
		{"SigningKeysCallbackErrorRollsBack", testSigningKeysCallbackErrorRollsBack},
		{"SigningKeysDuplicateKIDRollsBack", testSigningKeysDuplicateKIDRollsBack},
		{"SigningKeysConcurrentRotation", testSigningKeysConcurrentRotation},
		{"JTIUse", testJTIUse},
		{"JTIExpiry", testJTIExpiry},
		{"JTIConcurrentUse", testJTIConcurrentUse},
		{"TxCommit", testTxCommit},
		{"TxRollback", testTxRollback},
		{"TxNested", testTxNested},
		{"Ping", testPing},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, open(t))
		})
	}
}

// Times: PostgreSQL keeps microseconds, SQLite (as text) nanoseconds.
var (
	zoneEast = time.FixedZone("UTC+05:30", 5*3600+30*60)
	zoneWest = time.FixedZone("UTC-08", -8*3600)
	zoneFar  = time.FixedZone("UTC+14", 14*3600)

	// base is a fixed instant with a sub-microsecond part, close to midnight
	// so that a zone mix-up also changes the date.
	base = time.Date(2031, time.February, 28, 23, 59, 58, 123456789, time.UTC)
)

// equateTimes compares instants, not zones, and tolerates PostgreSQL's
// microsecond resolution.
var equateTimes = cmpopts.EquateApproxTime(time.Microsecond)

// sameInstant fails the test unless got is want, up to PostgreSQL's
// microsecond resolution.
func sameInstant(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d <= -time.Microsecond || d >= time.Microsecond || got.IsZero() != want.IsZero() {
		t.Errorf("%s = %s, want the instant %s (off by %s)", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano), d)
	}
}

// fixedClock sets the store's clock to at and returns a function that moves it.
func fixedClock(s *storage.Store, at time.Time) func(time.Time) {
	var mu sync.Mutex
	s.SetClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return at
	})
	return func(t time.Time) {
		mu.Lock()
		defer mu.Unlock()
		at = t
	}
}

func ptr[T any](v T) *T { return &v }

func wantErr(t *testing.T, op string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want errors.Is(err, %v)", op, err, target)
	}
}

// fullClient is a client with every field set to a non-zero value.
func fullClient(id string) *storage.Client {
	return &storage.Client{
		ID:                      id,
		Name:                    "Client " + id,
		SecretHash:              "hash-" + id,
		PreviousSecretHash:      "old-hash-" + id,
		PreviousSecretExpiresAt: ptr(base.Add(time.Hour).In(zoneEast)),
		RedirectURIs:            []string{"https://app.example/cb", "http://127.0.0.1:8080/cb?x=1&y=ü"},
		PostLogoutRedirectURIs:  []string{"https://app.example/bye"},
		GrantTypes:              []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes:           []string{"code"},
		Scope:                   "openid profile offline_access",
		Audience:                []string{"https://api.example", `quote"and\backslash`},
		TokenEndpointAuthMethod: "client_secret_basic",
		SkipConsent:             true,
		AllowIntrospection:      true,
	}
}

func createClient(t *testing.T, s *storage.Store, c *storage.Client) {
	t.Helper()
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatalf("CreateClient(%q): %v", c.ID, err)
	}
}

func getClient(t *testing.T, s *storage.Store, id string) *storage.Client {
	t.Helper()
	c, err := s.GetClient(t.Context(), id)
	if err != nil {
		t.Fatalf("GetClient(%q): %v", id, err)
	}
	return c
}

func clientIDs(t *testing.T, s *storage.Store) []string {
	t.Helper()
	cs, err := s.ListClients(t.Context())
	if err != nil {
		t.Fatalf("ListClients: %v", err)
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func testClientCreateGet(t *testing.T, s *storage.Store) {
	created := base.Add(-time.Hour)
	move := fixedClock(s, created)
	want := fullClient("web-app")
	createClient(t, s, want)
	sameInstant(t, "CreateClient set CreatedAt", want.CreatedAt, created)
	sameInstant(t, "CreateClient set UpdatedAt", want.UpdatedAt, created)

	got := getClient(t, s, "web-app")
	if diff := cmp.Diff(want, got, equateTimes); diff != "" {
		t.Errorf("GetClient mismatch (-want +got):\n%s", diff)
	}

	// A public client: no secrets, flags false, no previous-secret expiry.
	// Created earlier than the first, but with an id that sorts after it.
	move(created.Add(-time.Second))
	public := &storage.Client{ID: "zz-spa", TokenEndpointAuthMethod: "none", RedirectURIs: []string{"https://spa.example/cb"}}
	createClient(t, s, public)
	got = getClient(t, s, "zz-spa")
	if diff := cmp.Diff(public, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("GetClient(public) mismatch (-want +got):\n%s", diff)
	}

	cs, err := s.ListClients(t.Context())
	if err != nil {
		t.Fatalf("ListClients: %v", err)
	}
	if diff := cmp.Diff([]storage.Client{*public, *want}, cs, equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ListClients mismatch (-want +got):\n%s", diff)
	}
}

func testClientListOrder(t *testing.T, s *storage.Store) {
	if ids := clientIDs(t, s); len(ids) != 0 {
		t.Fatalf("ListClients on an empty store = %q, want none", ids)
	}
	// Created in the order c, a, b, d; a later than the others; b, c and d
	// share a created_at, so the id breaks the tie. Neither insertion order
	// nor id order alone gives the wanted order.
	t1, t2 := base, base.Add(time.Second)
	move := fixedClock(s, t1)
	createClient(t, s, fullClient("c"))
	move(t2)
	createClient(t, s, fullClient("a"))
	move(t1)
	createClient(t, s, fullClient("b"))
	// A few microseconds earlier than t1 (but not sub-microsecond, which
	// PostgreSQL would round away): sorts first.
	move(t1.Add(-3 * time.Microsecond))
	createClient(t, s, fullClient("d"))

	want := []string{"d", "b", "c", "a"}
	for i := range 2 { // ordering must be stable across calls
		if diff := cmp.Diff(want, clientIDs(t, s)); diff != "" {
			t.Errorf("ListClients call %d order (-want +got):\n%s", i, diff)
		}
	}
}

func testClientUpdate(t *testing.T, s *storage.Store) {
	created, updated := base, base.Add(time.Minute)
	move := fixedClock(s, created)
	orig := &storage.Client{ID: "app", Name: "before", TokenEndpointAuthMethod: "client_secret_post", RedirectURIs: []string{"https://before.example/cb"}}
	createClient(t, s, orig)
	other := fullClient("bystander")
	createClient(t, s, other)

	// Set every field, including booleans, arrays and the previous secret.
	move(updated)
	up := fullClient("app")
	up.Name = "after"
	up.CreatedAt = base.Add(-24 * time.Hour) // must be ignored
	if err := s.UpdateClient(t.Context(), up); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	sameInstant(t, "UpdateClient set UpdatedAt", up.UpdatedAt, updated)
	want := fullClient("app")
	want.Name = "after"
	want.CreatedAt, want.UpdatedAt = created, updated
	if diff := cmp.Diff(want, getClient(t, s, "app"), equateTimes); diff != "" {
		t.Errorf("after UpdateClient (set all) (-want +got):\n%s", diff)
	}

	// Clear every field again: zero values must be written too.
	cleared := base.Add(2 * time.Minute)
	move(cleared)
	zero := &storage.Client{ID: "app", TokenEndpointAuthMethod: "none", RedirectURIs: []string{}, GrantTypes: []string{}}
	if err := s.UpdateClient(t.Context(), zero); err != nil {
		t.Fatalf("UpdateClient (clear): %v", err)
	}
	want = &storage.Client{ID: "app", TokenEndpointAuthMethod: "none", CreatedAt: created, UpdatedAt: cleared}
	if diff := cmp.Diff(want, getClient(t, s, "app"), equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after UpdateClient (clear all) (-want +got):\n%s", diff)
	}

	// The other client is untouched.
	if diff := cmp.Diff(other, getClient(t, s, "bystander"), equateTimes); diff != "" {
		t.Errorf("UpdateClient changed another client (-want +got):\n%s", diff)
	}
}

func testClientDelete(t *testing.T, s *storage.Store) {
	createClient(t, s, fullClient("keep"))
	createClient(t, s, fullClient("drop"))
	if err := s.DeleteClient(t.Context(), "drop"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	_, err := s.GetClient(t.Context(), "drop")
	wantErr(t, "GetClient after DeleteClient", err, storage.ErrNotFound)
	wantErr(t, "second DeleteClient", s.DeleteClient(t.Context(), "drop"), storage.ErrNotFound)
	if diff := cmp.Diff([]string{"keep"}, clientIDs(t, s)); diff != "" {
		t.Errorf("ListClients after delete (-want +got):\n%s", diff)
	}
	// The id is free again.
	createClient(t, s, fullClient("drop"))
}

func testClientNotFound(t *testing.T, s *storage.Store) {
	createClient(t, s, fullClient("known"))
	for _, id := range []string{"unknown", "KNOWN", "known ", "%", "kno_n"} {
		ops := []struct {
			name string
			call func() error
		}{
			{"GetClient", func() error {
				c, err := s.GetClient(t.Context(), id)
				if c != nil {
					t.Errorf("GetClient(%q) returned %+v with error %v", id, c, err)
				}
				return err
			}},
			{"UpdateClient", func() error { return s.UpdateClient(t.Context(), fullClient(id)) }},
			{"DeleteClient", func() error { return s.DeleteClient(t.Context(), id) }},
		}
		for _, op := range ops {
			wantErr(t, fmt.Sprintf("%s(%q)", op.name, id), op.call(), storage.ErrNotFound)
		}
	}
	if diff := cmp.Diff([]string{"known"}, clientIDs(t, s)); diff != "" {
		t.Errorf("UpdateClient of unknown ids created rows (-want +got):\n%s", diff)
	}
}

func testClientDuplicateCreate(t *testing.T, s *storage.Store) {
	first := fullClient("dup")
	createClient(t, s, first)
	second := fullClient("dup")
	second.Name = "impostor"
	second.SecretHash = "other"
	err := s.CreateClient(t.Context(), second)
	wantErr(t, "duplicate CreateClient", err, storage.ErrConflict)
	if errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("duplicate CreateClient error %v also matches ErrUnavailable", err)
	}
	if diff := cmp.Diff(first, getClient(t, s, "dup"), equateTimes); diff != "" {
		t.Errorf("duplicate CreateClient changed the stored client (-want +got):\n%s", diff)
	}
}

// testClientEmptyAndNilSlices: nil and empty array fields are both accepted,
// come back empty, and are stored as the JSON array [] the schema declares.
func testClientEmptyAndNilSlices(t *testing.T, s *storage.Store) {
	cases := []struct {
		name  string
		value []string
	}{
		{"nil", nil},
		{"empty", []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &storage.Client{
				ID: "c-" + tc.name, TokenEndpointAuthMethod: "none",
				RedirectURIs: tc.value, PostLogoutRedirectURIs: tc.value, GrantTypes: tc.value,
				ResponseTypes: tc.value, Audience: tc.value,
			}
			if err := s.CreateClient(t.Context(), c); err != nil {
				t.Fatalf("CreateClient with %s slices: %v", tc.name, err)
			}
			got := getClient(t, s, c.ID)
			for field, v := range map[string][]string{
				"RedirectURIs": got.RedirectURIs, "PostLogoutRedirectURIs": got.PostLogoutRedirectURIs,
				"GrantTypes": got.GrantTypes, "ResponseTypes": got.ResponseTypes, "Audience": got.Audience,
			} {
				if len(v) != 0 {
					t.Errorf("%s = %q, want empty", field, v)
				}
			}
			checkJSONArrayColumns(t, s, c.ID)

			// Same through UpdateClient, starting from non-empty arrays.
			full := fullClient(c.ID)
			if err := s.UpdateClient(t.Context(), full); err != nil {
				t.Fatalf("UpdateClient: %v", err)
			}
			c.TokenEndpointAuthMethod = "none"
			if err := s.UpdateClient(t.Context(), c); err != nil {
				t.Fatalf("UpdateClient with %s slices: %v", tc.name, err)
			}
			got = getClient(t, s, c.ID)
			if n := len(got.RedirectURIs) + len(got.PostLogoutRedirectURIs) + len(got.GrantTypes) + len(got.ResponseTypes) + len(got.Audience); n != 0 {
				t.Errorf("after UpdateClient with %s slices the arrays hold %d values, want 0: %+v", tc.name, n, got)
			}
			checkJSONArrayColumns(t, s, c.ID)
		})
	}
}

// checkJSONArrayColumns reads the array columns of client id with plain SQL
// and checks that each holds a JSON array (as the schema's DEFAULT '[]' does).
func checkJSONArrayColumns(t *testing.T, s *storage.Store, id string) {
	t.Helper()
	q := "SELECT redirect_uris, post_logout_redirect_uris, grant_types, response_types, audience FROM clients WHERE id = ?"
	if s.Dialect() == storage.Postgres {
		q = strings.Replace(q, "?", "$1", 1)
	}
	var cols [5]sql.NullString
	if err := s.SQLDB().QueryRowContext(t.Context(), q, id).Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4]); err != nil {
		t.Fatalf("read array columns: %v", err)
	}
	for i, c := range cols {
		var arr []string
		if !c.Valid || json.Unmarshal([]byte(c.String), &arr) != nil || arr == nil {
			t.Errorf("array column %d of client %q holds %+v, want a JSON array", i, id, c)
		}
	}
}

func testClientUnusualIDs(t *testing.T, s *storage.Store) {
	ids := []string{
		"with space",
		"trailing ",
		"Case", "case",
		"ünïcödé-客户端-🔑",
		`quote'double"back\slash`,
		"x'; DROP TABLE clients; --",
		"100%_like",
		"urn:example:client/1?x=y#frag",
		"https://client.example/metadata.json",
		strings.Repeat("long", 64),
	}
	for _, id := range ids {
		createClient(t, s, fullClient(id))
	}
	for _, id := range ids {
		if got := getClient(t, s, id); got.ID != id || got.Name != "Client "+id {
			t.Errorf("GetClient(%q) returned id %q name %q", id, got.ID, got.Name)
		}
	}
	got := clientIDs(t, s)
	if diff := cmp.Diff(ids, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("ListClients ids (-want +got):\n%s", diff)
	}
	// Look-alikes of stored ids do not match.
	for _, id := range []string{"with_space", "trailing", "CASE", "100%", "100%_lik_"} {
		_, err := s.GetClient(t.Context(), id)
		wantErr(t, fmt.Sprintf("GetClient(%q)", id), err, storage.ErrNotFound)
	}
	// Delete and update hit exactly one row.
	if err := s.DeleteClient(t.Context(), "Case"); err != nil {
		t.Fatalf("DeleteClient(Case): %v", err)
	}
	if getClient(t, s, "case").ID != "case" {
		t.Error("DeleteClient(Case) removed case")
	}
}

// testTimeRoundTrip writes times in several zones with nanoseconds and
// expects the same instants back.
func testTimeRoundTrip(t *testing.T, s *storage.Store) {
	zones := []*time.Location{time.UTC, zoneEast, zoneWest, zoneFar, time.Local}
	move := fixedClock(s, base)
	for i, loc := range zones {
		t.Run(loc.String(), func(t *testing.T) {
			at := base.Add(time.Duration(i) * 37 * time.Hour).In(loc)
			move(at) // also exercises CreatedAt/UpdatedAt from a non-UTC clock
			c := &storage.Client{ID: fmt.Sprintf("client-%d", i), TokenEndpointAuthMethod: "none", PreviousSecretExpiresAt: ptr(at.Add(time.Millisecond))}
			createClient(t, s, c)
			got := getClient(t, s, c.ID)
			sameInstant(t, "Client.CreatedAt", got.CreatedAt, at)
			sameInstant(t, "Client.UpdatedAt", got.UpdatedAt, at)
			if got.PreviousSecretExpiresAt == nil {
				t.Fatal("Client.PreviousSecretExpiresAt = nil")
			}
			sameInstant(t, "Client.PreviousSecretExpiresAt", *got.PreviousSecretExpiresAt, at.Add(time.Millisecond))

			kid := fmt.Sprintf("key-%d", i)
			k := signingKey(kid, "ES256", at.Add(time.Second))
			k.CreatedAt = at.Add(-time.Second)
			k.RetiresAt = ptr(at.Add(48 * time.Hour))
			addKeys(t, s, k)
			retire := at.Add(72*time.Hour + 999*time.Microsecond)
			updateKeys(t, s, storage.KeyChange{Retire: map[string]time.Time{kid: retire}})
			gk := findKey(t, s, kid)
			sameInstant(t, "SigningKey.CreatedAt", gk.CreatedAt, k.CreatedAt)
			sameInstant(t, "SigningKey.ActivatesAt", gk.ActivatesAt, k.ActivatesAt)
			if gk.RetiresAt == nil {
				t.Fatal("SigningKey.RetiresAt = nil")
			}
			sameInstant(t, "SigningKey.RetiresAt", *gk.RetiresAt, retire)
		})
	}
}

// testTimeOrderingAcrossZones: list order follows instants even when the
// times were handed over in different zones (a text comparison of the
// local wall-clock times gives the opposite order here).
func testTimeOrderingAcrossZones(t *testing.T, s *storage.Store) {
	early := base.In(zoneFar)                // wall clock: next day
	late := base.Add(time.Hour).In(zoneWest) // wall clock: previous day
	latest := base.Add(2 * time.Hour).In(zoneEast)

	addKeys(t, s,
		signingKey("a-latest", "RS256", latest),
		signingKey("b-late", "RS256", late),
		signingKey("c-early", "RS256", early),
	)
	if diff := cmp.Diff([]string{"c-early", "b-late", "a-latest"}, keyIDs(listKeys(t, s))); diff != "" {
		t.Errorf("ListSigningKeys order (-want +got):\n%s", diff)
	}

	move := fixedClock(s, late)
	createClient(t, s, fullClient("a-late"))
	move(early)
	createClient(t, s, fullClient("b-early"))
	move(latest)
	createClient(t, s, fullClient("c-latest"))
	if diff := cmp.Diff([]string{"b-early", "a-late", "c-latest"}, clientIDs(t, s)); diff != "" {
		t.Errorf("ListClients order with a non-UTC clock (-want +got):\n%s", diff)
	}
}

func signingKey(kid, alg string, activates time.Time) storage.SigningKey {
	return storage.SigningKey{
		KID:         kid,
		Alg:         alg,
		PrivateKey:  []byte("\x00ciphertext\xff\x00" + kid),
		PublicJWK:   fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":%q,"x":"AAAA","y":"BBBB"}`, kid),
		ActivatesAt: activates,
	}
}

// updateKeys applies change and returns the key set the callback saw.
func updateKeys(t *testing.T, s *storage.Store, change storage.KeyChange) []storage.SigningKey {
	t.Helper()
	var seen []storage.SigningKey
	err := s.UpdateSigningKeys(t.Context(), func(current []storage.SigningKey) (storage.KeyChange, error) {
		seen = current
		return change, nil
	})
	if err != nil {
		t.Fatalf("UpdateSigningKeys(%+v): %v", change, err)
	}
	return seen
}

func addKeys(t *testing.T, s *storage.Store, ks ...storage.SigningKey) {
	t.Helper()
	updateKeys(t, s, storage.KeyChange{Add: ks})
}

func listKeys(t *testing.T, s *storage.Store) []storage.SigningKey {
	t.Helper()
	ks, err := s.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	return ks
}

func findKey(t *testing.T, s *storage.Store, kid string) storage.SigningKey {
	t.Helper()
	for _, k := range listKeys(t, s) {
		if k.KID == kid {
			return k
		}
	}
	t.Fatalf("key %q not stored", kid)
	return storage.SigningKey{}
}

func keyIDs(ks []storage.SigningKey) []string {
	ids := make([]string, 0, len(ks))
	for _, k := range ks {
		ids = append(ids, k.KID)
	}
	return ids
}

func testSigningKeysAddAndList(t *testing.T, s *storage.Store) {
	now := base
	fixedClock(s, now)
	if ks := listKeys(t, s); len(ks) != 0 {
		t.Fatalf("ListSigningKeys on an empty store = %v", keyIDs(ks))
	}
	kb := signingKey("kid-b", "RS256", now.Add(2*time.Hour))
	kc := signingKey("kid-c", "ES256", now.Add(time.Hour))
	ka := signingKey("kid-a", "RS256", now.Add(time.Hour)) // same activation as kid-c: kid breaks the tie
	kd := signingKey("kid-d", "ES256", now.Add(-time.Hour))
	kd.CreatedAt = now.Add(-2 * time.Hour) // explicit CreatedAt is kept
	kd.RetiresAt = ptr(now.Add(24 * time.Hour))

	if seen := updateKeys(t, s, storage.KeyChange{Add: []storage.SigningKey{kb, kc, ka, kd}}); len(seen) != 0 {
		t.Errorf("first callback saw %v, want no keys", keyIDs(seen))
	}
	for _, k := range []*storage.SigningKey{&ka, &kb, &kc} {
		k.CreatedAt = now // filled in by the store
	}
	want := []storage.SigningKey{kd, ka, kc, kb}
	got := listKeys(t, s)
	if diff := cmp.Diff(want, got, equateTimes); diff != "" {
		t.Errorf("ListSigningKeys (-want +got):\n%s", diff)
	}
	// The callback sees the same set, in the same order.
	seen := updateKeys(t, s, storage.KeyChange{})
	if diff := cmp.Diff(want, seen, equateTimes); diff != "" {
		t.Errorf("callback's current keys (-want +got):\n%s", diff)
	}
}

func testSigningKeysRetireAndDelete(t *testing.T, s *storage.Store) {
	k1 := signingKey("k1", "RS256", base)
	k2 := signingKey("k2", "RS256", base.Add(time.Hour))
	k3 := signingKey("k3", "RS256", base.Add(2*time.Hour))
	k3.RetiresAt = ptr(base.Add(10 * time.Hour))
	addKeys(t, s, k1, k2, k3)

	r1 := base.Add(5 * time.Hour).In(zoneWest)
	r3 := base.Add(3 * time.Hour) // retiring again moves the time
	seen := updateKeys(t, s, storage.KeyChange{
		Retire: map[string]time.Time{"k1": r1, "k3": r3},
		Delete: []string{"k2"},
	})
	if diff := cmp.Diff([]string{"k1", "k2", "k3"}, keyIDs(seen)); diff != "" {
		t.Errorf("callback's current keys (-want +got):\n%s", diff)
	}
	got := listKeys(t, s)
	if diff := cmp.Diff([]string{"k1", "k3"}, keyIDs(got)); diff != "" {
		t.Fatalf("keys after delete (-want +got):\n%s", diff)
	}
	for _, k := range got {
		want := map[string]time.Time{"k1": r1, "k3": r3}[k.KID]
		if k.RetiresAt == nil {
			t.Errorf("%s.RetiresAt = nil, want %s", k.KID, want)
			continue
		}
		sameInstant(t, k.KID+".RetiresAt", *k.RetiresAt, want)
		if k.Alg != "RS256" || k.PublicJWK == "" || len(k.PrivateKey) == 0 {
			t.Errorf("retiring %s changed other fields: %+v", k.KID, k)
		}
	}

	// Deleting several at once, and a delete alone.
	updateKeys(t, s, storage.KeyChange{Delete: []string{"k1", "k3"}})
	if ks := listKeys(t, s); len(ks) != 0 {
		t.Errorf("keys after deleting all: %v", keyIDs(ks))
	}
}

var errDecide = errors.New("decide failed")

func testSigningKeysCallbackErrorRollsBack(t *testing.T, s *storage.Store) {
	addKeys(t, s, signingKey("old", "RS256", base))
	before := listKeys(t, s)

	err := s.UpdateSigningKeys(t.Context(), func([]storage.SigningKey) (storage.KeyChange, error) {
		return storage.KeyChange{
			Add:    []storage.SigningKey{signingKey("new", "RS256", base.Add(time.Hour))},
			Retire: map[string]time.Time{"old": base.Add(time.Hour)},
			Delete: []string{"old"},
		}, errDecide
	})
	if !errors.Is(err, errDecide) {
		t.Errorf("UpdateSigningKeys error %v, want the callback's error", err)
	}
	if diff := cmp.Diff(before, listKeys(t, s), equateTimes); diff != "" {
		t.Errorf("a failed callback changed the keys (-want +got):\n%s", diff)
	}
}

func testSigningKeysDuplicateKIDRollsBack(t *testing.T, s *storage.Store) {
	addKeys(t, s, signingKey("existing", "RS256", base))
	before := listKeys(t, s)

	cases := []struct {
		name string
		add  []storage.SigningKey
	}{
		{"kid already stored", []storage.SigningKey{
			signingKey("fresh", "ES256", base),
			signingKey("existing", "ES256", base.Add(time.Hour)),
		}},
		{"kid twice in one change", []storage.SigningKey{
			signingKey("twice", "ES256", base),
			signingKey("twice", "ES256", base.Add(time.Hour)),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.UpdateSigningKeys(t.Context(), func([]storage.SigningKey) (storage.KeyChange, error) {
				return storage.KeyChange{Add: tc.add}, nil
			})
			wantErr(t, "UpdateSigningKeys", err, storage.ErrConflict)
			if diff := cmp.Diff(before, listKeys(t, s), equateTimes); diff != "" {
				t.Errorf("a conflicting change was partly applied (-want +got):\n%s", diff)
			}
		})
	}
	// The store still works after the rolled-back transactions.
	addKeys(t, s, signingKey("after", "ES256", base))
	if diff := cmp.Diff([]string{"after", "existing"}, keyIDs(listKeys(t, s))); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

// testSigningKeysConcurrentRotation: many callers decide at once to create
// the key of an algorithm when none exists. UpdateSigningKeys serialises
// them, so exactly one key is created and every caller succeeds.
func testSigningKeysConcurrentRotation(t *testing.T, s *storage.Store) {
	const n = 12
	var (
		calls atomic.Int32
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.UpdateSigningKeys(t.Context(), func(current []storage.SigningKey) (storage.KeyChange, error) {
				calls.Add(1)
				for _, k := range current {
					if k.Alg == "RS256" {
						return storage.KeyChange{}, nil
					}
				}
				// Widen the window between reading and writing, so that
				// unserialised callers would all see an empty set.
				time.Sleep(5 * time.Millisecond)
				return storage.KeyChange{Add: []storage.SigningKey{signingKey(fmt.Sprintf("rs-%02d", i), "RS256", base)}}, nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: UpdateSigningKeys: %v", i, err)
		}
	}
	if got := calls.Load(); got != n {
		t.Errorf("callback ran %d times, want %d", got, n)
	}
	if ks := listKeys(t, s); len(ks) != 1 {
		t.Errorf("%d keys after concurrent rotation, want exactly 1: %v", len(ks), keyIDs(ks))
	}
}

func jtiUsed(t *testing.T, s *storage.Store, jti string) bool {
	t.Helper()
	used, err := s.JTIUsed(t.Context(), jti)
	if err != nil {
		t.Fatalf("JTIUsed(%q): %v", jti, err)
	}
	return used
}

func testJTIUse(t *testing.T, s *storage.Store) {
	fixedClock(s, base)
	exp := base.Add(5 * time.Minute)
	if jtiUsed(t, s, "jti-1") {
		t.Error("JTIUsed before use = true")
	}
	if err := s.UseJTI(t.Context(), "jti-1", exp); err != nil {
		t.Fatalf("first UseJTI: %v", err)
	}
	if !jtiUsed(t, s, "jti-1") {
		t.Error("JTIUsed after use = false")
	}
	wantErr(t, "second UseJTI", s.UseJTI(t.Context(), "jti-1", exp), storage.ErrConflict)
	wantErr(t, "second UseJTI with a later expiry", s.UseJTI(t.Context(), "jti-1", exp.Add(time.Hour)), storage.ErrConflict)
	// Other ids are independent.
	if jtiUsed(t, s, "jti-2") || jtiUsed(t, s, "JTI-1") {
		t.Error("JTIUsed = true for an id never used")
	}
	if err := s.UseJTI(t.Context(), "jti-2", exp); err != nil {
		t.Errorf("UseJTI(jti-2): %v", err)
	}
}

func testJTIExpiry(t *testing.T, s *storage.Store) {
	cases := []struct {
		name string
		// exp relative to base, and the zone it is handed over in
		exp time.Duration
		loc *time.Location
		// when the clock is moved to (relative to base), and whether the
		// jti then still counts as used
		at        time.Duration
		stillUsed bool
	}{
		{"before expiry", time.Minute, time.UTC, 59 * time.Second, true},
		{"at expiry", time.Minute, time.UTC, time.Minute, false},
		{"after expiry", time.Minute, time.UTC, 2 * time.Minute, false},
		{"before expiry, exp east of UTC", time.Minute, zoneFar, 30 * time.Second, true},
		{"after expiry, exp east of UTC", time.Minute, zoneFar, 2 * time.Minute, false},
		{"before expiry, exp west of UTC", time.Minute, zoneWest, 30 * time.Second, true},
		{"after expiry, exp west of UTC", time.Minute, zoneWest, 2 * time.Minute, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jti := fmt.Sprintf("jti-%d", i)
			move := fixedClock(s, base)
			if err := s.UseJTI(t.Context(), jti, base.Add(tc.exp).In(tc.loc)); err != nil {
				t.Fatalf("UseJTI: %v", err)
			}
			move(base.Add(tc.at))
			if got := jtiUsed(t, s, jti); got != tc.stillUsed {
				t.Errorf("JTIUsed at +%s with exp +%s = %v, want %v", tc.at, tc.exp, got, tc.stillUsed)
			}
			err := s.UseJTI(t.Context(), jti, base.Add(tc.at+time.Hour))
			if tc.stillUsed {
				wantErr(t, "UseJTI before expiry", err, storage.ErrConflict)
				return
			}
			if err != nil {
				t.Fatalf("UseJTI of an expired jti: %v", err)
			}
			if !jtiUsed(t, s, jti) {
				t.Error("JTIUsed after reuse = false")
			}
			wantErr(t, "UseJTI right after reuse", s.UseJTI(t.Context(), jti, base.Add(tc.at+time.Hour)), storage.ErrConflict)
		})
	}
}

// testJTIConcurrentUse: of many simultaneous uses of one jti exactly one
// succeeds, both for a fresh jti and for one whose earlier use expired.
func testJTIConcurrentUse(t *testing.T, s *storage.Store) {
	move := fixedClock(s, base)
	if err := s.UseJTI(t.Context(), "expired", base.Add(time.Second)); err != nil {
		t.Fatalf("UseJTI: %v", err)
	}
	move(base.Add(time.Minute))
	for _, jti := range []string{"fresh", "expired"} {
		t.Run(jti, func(t *testing.T) {
			const n = 12
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				errs  = make([]error, n)
			)
			for i := range n {
				wg.Go(func() {
					<-start
					errs[i] = s.UseJTI(t.Context(), jti, base.Add(time.Hour))
				})
			}
			close(start)
			wg.Wait()
			ok := 0
			for i, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, storage.ErrConflict):
					t.Errorf("use %d: %v, want nil or ErrConflict", i, err)
				}
			}
			if ok != 1 {
				t.Errorf("%d of %d concurrent uses succeeded, want exactly 1", ok, n)
			}
		})
	}
}

var errRollback = errors.New("roll back")

func testTxCommit(t *testing.T, s *storage.Store) {
	err := s.WithTx(t.Context(), func(ctx context.Context) error {
		if err := s.CreateClient(ctx, fullClient("in-tx")); err != nil {
			return err
		}
		// Visible inside the transaction.
		if _, err := s.GetClient(ctx, "in-tx"); err != nil {
			return fmt.Errorf("GetClient inside the tx: %w", err)
		}
		return s.UseJTI(ctx, "tx-jti", base.Add(time.Hour))
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	getClient(t, s, "in-tx")
	fixedClock(s, base)
	if !jtiUsed(t, s, "tx-jti") {
		t.Error("jti used in a committed tx is not recorded")
	}
}

func testTxRollback(t *testing.T, s *storage.Store) {
	createClient(t, s, fullClient("existing"))
	err := s.WithTx(t.Context(), func(ctx context.Context) error {
		if err := s.CreateClient(ctx, fullClient("in-tx")); err != nil {
			return err
		}
		if err := s.DeleteClient(ctx, "existing"); err != nil {
			return err
		}
		// A change in the tx is not seen from outside it before commit.
		// (SQLite in WAL mode lets this reader run beside the writer.)
		if _, err := s.GetClient(t.Context(), "in-tx"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetClient outside the tx before commit: %v, want ErrNotFound", err)
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("WithTx error %v, want fn's error", err)
	}
	_, err = s.GetClient(t.Context(), "in-tx")
	wantErr(t, "GetClient of a client created in a rolled-back tx", err, storage.ErrNotFound)
	getClient(t, s, "existing")

	// Signing-key changes inside a failed outer tx roll back too.
	err = s.WithTx(t.Context(), func(ctx context.Context) error {
		if err := s.UpdateSigningKeys(ctx, func([]storage.SigningKey) (storage.KeyChange, error) {
			return storage.KeyChange{Add: []storage.SigningKey{signingKey("k", "RS256", base)}}, nil
		}); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("WithTx error %v, want fn's error", err)
	}
	if ks := listKeys(t, s); len(ks) != 0 {
		t.Errorf("keys added in a rolled-back tx: %v", keyIDs(ks))
	}
}

func testTxNested(t *testing.T, s *storage.Store) {
	cases := []struct {
		name     string
		innerErr error
		outerErr error
		wantErr  error
		exists   bool
	}{
		{"both commit", nil, nil, nil, true},
		{"outer fails after inner succeeded", nil, errRollback, errRollback, false},
		{"inner fails", errRollback, nil, errRollback, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outerID, innerID := fmt.Sprintf("outer-%d", i), fmt.Sprintf("inner-%d", i)
			err := s.WithTx(t.Context(), func(ctx context.Context) error {
				if err := s.CreateClient(ctx, fullClient(outerID)); err != nil {
					return err
				}
				err := s.WithTx(ctx, func(ctx context.Context) error {
					if err := s.CreateClient(ctx, fullClient(innerID)); err != nil {
						return err
					}
					// The inner tx sees the outer one's uncommitted row.
					if _, err := s.GetClient(ctx, outerID); err != nil {
						return fmt.Errorf("inner tx does not see the outer tx: %w", err)
					}
					return tc.innerErr
				})
				if err != nil {
					return err
				}
				return tc.outerErr
			})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("WithTx error %v, want %v", err, tc.wantErr)
			}
			for _, id := range []string{outerID, innerID} {
				_, err := s.GetClient(t.Context(), id)
				switch {
				case tc.exists && err != nil:
					t.Errorf("GetClient(%q) after commit: %v", id, err)
				case !tc.exists && !errors.Is(err, storage.ErrNotFound):
					t.Errorf("GetClient(%q) after rollback: %v, want ErrNotFound (the nested tx must join the outer one)", id, err)
				}
			}
		})
	}
}

func testPing(t *testing.T, s *storage.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantErr(t, "Ping after Close", s.Ping(t.Context()), storage.ErrUnavailable)
	_, err := s.GetClient(t.Context(), "any")
	wantErr(t, "GetClient after Close", err, storage.ErrUnavailable)
}

// testCanceledContext: a canceled request is reported as such, not as a
// missing record nor as an unavailable database.
func testCanceledContext(t *testing.T, s *storage.Store) {
	createClient(t, s, fullClient("c"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.GetClient(ctx, "c")
	if !errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("GetClient with a canceled context: %v, want context.Canceled only", err)
	}
}

// testClientModifyConcurrent: parallel read-modify-writes of one client
// through ModifyClient lose nothing (each appends its mark to Scope), an
// error from the callback writes nothing, and unknown ids are ErrNotFound.
func testClientModifyConcurrent(t *testing.T, s *storage.Store) {
	ctx := context.Background()
	if err := s.CreateClient(ctx, &storage.Client{ID: "c", TokenEndpointAuthMethod: "client_secret_basic"}); err != nil {
		t.Fatal(err)
	}
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.ModifyClient(ctx, "c", func(c *storage.Client) error {
				time.Sleep(2 * time.Millisecond) // widen the race window
				c.Scope = strings.TrimSpace(c.Scope + fmt.Sprintf(" m%d", i))
				return nil
			})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ModifyClient: %v", err)
		}
	}
	got, err := s.GetClient(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if marks := strings.Fields(got.Scope); len(marks) != n {
		t.Fatalf("%d of %d concurrent changes kept: %q", len(marks), n, got.Scope)
	}

	boom := errors.New("boom")
	if _, err := s.ModifyClient(ctx, "c", func(c *storage.Client) error { c.Scope = "lost"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("callback error: %v", err)
	}
	if got, _ := s.GetClient(ctx, "c"); got.Scope == "lost" {
		t.Error("a failed change was written")
	}
	if _, err := s.ModifyClient(ctx, "nope", func(*storage.Client) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

// testUsers: create, get by id and by username, unique ids and usernames.
func testUsers(t *testing.T, s *storage.Store) {
	ctx := context.Background()
	u := &storage.User{ID: "u1", Username: "zoë", PasswordHash: "$argon2id$x", Email: "z@example.com", EmailVerified: true, Name: "Zoë"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func() (*storage.User, error){
		"by id":       func() (*storage.User, error) { return s.GetUser(ctx, "u1") },
		"by username": func() (*storage.User, error) { return s.GetUserByUsername(ctx, "zoë") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(u, got, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	for _, dup := range []*storage.User{{ID: "u1", Username: "other", PasswordHash: "h"}, {ID: "u2", Username: "zoë", PasswordHash: "h"}} {
		if err := s.CreateUser(ctx, dup); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("duplicate %+v: %v, want ErrConflict", dup, err)
		}
	}
	if _, err := s.GetUser(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := s.GetUserByUsername(ctx, "Zoë"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("usernames are compared as stored (normalized by the caller): %v", err)
	}
}

// testPruneExpired: only rows expired at `now` go, in batches (more rows than
// one batch), and concurrent pruners delete each row once, without errors.
func testPruneExpired(t *testing.T, s *storage.Store) {
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const expired, live = 2345, 7
	if err := s.WithTx(ctx, func(ctx context.Context) error {
		for i := 0; i < expired; i++ {
			if err := s.UseJTI(ctx, fmt.Sprintf("old-%d", i), now.Add(-time.Duration(i+1)*time.Second)); err != nil {
				return err
			}
		}
		for i := 0; i < live; i++ {
			if err := s.UseJTI(ctx, fmt.Sprintf("live-%d", i), now.Add(time.Duration(i+1)*time.Second)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var total atomic.Int64
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.PruneExpired(ctx, now, storage.PruneOptions{})
			if err != nil {
				t.Errorf("PruneExpired: %v", err)
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	// A pruner that skipped (another held the lock) deleted nothing; one
	// more round finishes whatever the skipped ones left.
	n, err := s.PruneExpired(ctx, now, storage.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := total.Load() + n; got != expired {
		t.Errorf("pruned %d rows, want %d", got, expired)
	}
	s.SetClock(func() time.Time { return now })
	for i := 0; i < live; i++ {
		if used, err := s.JTIUsed(ctx, fmt.Sprintf("live-%d", i)); err != nil || !used {
			t.Errorf("live-%d pruned or unreadable: %v %v", i, used, err)
		}
	}
}
