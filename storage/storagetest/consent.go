package storagetest

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oauthd/oauthd/storage"
)

// Conformance cases for remembered consents (storage/consent.go) and for
// two rules of refresh-token rotation (storage/refreshtoken.go): a rotation
// is bound to the token's client, and a child made without request data
// inherits its parent's.

func getConsent(t *testing.T, s *storage.Store, user, client string) *storage.Consent {
	t.Helper()
	c, err := s.GetConsent(t.Context(), user, client)
	if err != nil {
		t.Fatalf("GetConsent(%q, %q): %v", user, client, err)
	}
	return c
}

func grantConsent(t *testing.T, s *storage.Store, user, client string, scopes []string, at time.Time) {
	t.Helper()
	if err := s.GrantConsent(t.Context(), user, client, scopes, at); err != nil {
		t.Fatalf("GrantConsent(%q, %q, %q): %v", user, client, scopes, err)
	}
}

// wantConsent fails unless the consent of user for client has scope (sorted,
// space-separated) and was granted at at.
func wantConsent(t *testing.T, s *storage.Store, user, client, scope string, at time.Time) {
	t.Helper()
	c := getConsent(t, s, user, client)
	if c.UserID != user || c.ClientID != client || c.Scope != scope {
		t.Errorf("consent of %q for %q = %+v, want scope %q", user, client, c, scope)
	}
	sameInstant(t, fmt.Sprintf("GrantedAt of %q for %q", user, client), c.GrantedAt, at)
}

// testConsentGrantGetDelete: a grant stores the scopes, a second grant keeps
// the union (sorted, without duplicates) and moves GrantedAt, rows are per
// user and client, a deleted consent is ErrNotFound and deleting nothing is
// no error.
func testConsentGrantGetDelete(t *testing.T, s *storage.Store) {
	_, err := s.GetConsent(t.Context(), "alice", "app")
	wantErr(t, "GetConsent before any grant", err, storage.ErrNotFound)

	t1, t2 := t0.In(zoneFar), t0.Add(time.Minute).In(zoneWest)
	grantConsent(t, s, "alice", "app", []string{"profile", "openid"}, t1)
	wantConsent(t, s, "alice", "app", "openid profile", t0)

	// The union of both grants, sorted, each scope once; the later time.
	grantConsent(t, s, "alice", "app", []string{"openid", "email", "email"}, t2)
	wantConsent(t, s, "alice", "app", "email openid profile", t0.Add(time.Minute))

	// A grant of scopes already covered, or of none, loses nothing.
	grantConsent(t, s, "alice", "app", []string{"profile"}, t2)
	grantConsent(t, s, "alice", "app", nil, t2)
	wantConsent(t, s, "alice", "app", "email openid profile", t0.Add(time.Minute))

	// Other users and clients have rows of their own.
	grantConsent(t, s, "alice", "other-app", []string{"offline_access"}, t1)
	grantConsent(t, s, "bob", "app", []string{"openid"}, t1)
	wantConsent(t, s, "alice", "other-app", "offline_access", t0)
	wantConsent(t, s, "bob", "app", "openid", t0)
	for _, k := range [][2]string{{"ALICE", "app"}, {"alice", "APP"}, {"app", "alice"}, {"carol", "app"}} {
		_, err := s.GetConsent(t.Context(), k[0], k[1])
		wantErr(t, fmt.Sprintf("GetConsent(%q, %q)", k[0], k[1]), err, storage.ErrNotFound)
	}

	// An empty first grant is stored, covering nothing but the empty set.
	grantConsent(t, s, "carol", "app", []string{}, t1)
	if c := getConsent(t, s, "carol", "app"); c.Scope != "" || !c.Covers(nil) || c.Covers([]string{"openid"}) {
		t.Errorf("empty consent = %+v", c)
	}

	if err := s.DeleteConsent(t.Context(), "alice", "app"); err != nil {
		t.Fatalf("DeleteConsent: %v", err)
	}
	_, err = s.GetConsent(t.Context(), "alice", "app")
	wantErr(t, "GetConsent after DeleteConsent", err, storage.ErrNotFound)
	// Deleting nothing: no error.
	if err := s.DeleteConsent(t.Context(), "alice", "app"); err != nil {
		t.Errorf("second DeleteConsent: %v", err)
	}
	if err := s.DeleteConsent(t.Context(), "nobody", "no-app"); err != nil {
		t.Errorf("DeleteConsent of an unknown pair: %v", err)
	}
	// The other rows stay.
	wantConsent(t, s, "alice", "other-app", "offline_access", t0)
	wantConsent(t, s, "bob", "app", "openid", t0)

	// A grant after the delete starts afresh: no union with what was
	// forgotten.
	grantConsent(t, s, "alice", "app", []string{"openid"}, t2)
	wantConsent(t, s, "alice", "app", "openid", t0.Add(time.Minute))
}

// testConsentCovers: Covers is set inclusion on whole scope tokens, after
// the union of two grants.
func testConsentCovers(t *testing.T, s *storage.Store) {
	grantConsent(t, s, "u", "c", []string{"openid", "profile"}, t0)
	grantConsent(t, s, "u", "c", []string{"email"}, t0)
	c := getConsent(t, s, "u", "c")
	cases := []struct {
		scopes []string
		want   bool
	}{
		{nil, true},
		{[]string{}, true},
		{[]string{"openid"}, true},
		{[]string{"email"}, true}, // from the second grant
		{[]string{"profile", "openid"}, true},
		{[]string{"email", "openid", "profile"}, true},
		{[]string{"openid", "openid"}, true},
		{[]string{"openid", "offline_access"}, false},
		{[]string{"offline_access"}, false},
		{[]string{"open"}, false},       // a prefix is not the scope
		{[]string{"openid pro"}, false}, // nor is a run of text across two
		{[]string{"OPENID"}, false},
		{[]string{""}, false},
	}
	for _, tc := range cases {
		if got := c.Covers(tc.scopes); got != tc.want {
			t.Errorf("consent %q Covers(%q) = %v, want %v", c.Scope, tc.scopes, got, tc.want)
		}
	}
}

// testRefreshTokenRotateOtherClient: a token presented by a client other
// than its own is unknown (RotateNotFound): whatever its state, nothing
// changes, NewChild is not called, and a rotated token does not count as
// theft.
func testRefreshTokenRotateOtherClient(t *testing.T, s *storage.Store) {
	at := t0.Add(10 * time.Minute) // when the token is presented
	cases := []struct {
		name string
		// prepare builds the family of sid and returns the token to present.
		prepare func(t *testing.T, sid string) string
	}{
		{"active token", func(t *testing.T, sid string) string {
			family(t, s, sid, nil)
			return sid + "/0"
		}},
		{"rotated token inside the reuse window", func(t *testing.T, sid string) string {
			family(t, s, sid, nil)
			rotateTo(t, s, sid+"/0", sid+"/1", at.Add(-time.Second), window)
			return sid + "/0"
		}},
		{"rotated token after the reuse window", func(t *testing.T, sid string) string {
			family(t, s, sid, nil)
			rotateTo(t, s, sid+"/0", sid+"/1", t0.Add(time.Minute), window) // 9 minutes before
			return sid + "/0"
		}},
		{"revoked token", func(t *testing.T, sid string) string {
			family(t, s, sid, nil)
			if err := s.RevokeGrantSession(t.Context(), sid, storage.ReasonUser, t0); err != nil {
				t.Fatal(err)
			}
			return sid + "/0"
		}},
		{"expired token", func(t *testing.T, sid string) string {
			createSession(t, s, session(sid, "u", t0))
			rt := &storage.RefreshToken{Signature: sid + "/0", SessionID: sid, RequestData: tokenData(sid + "/0"), CreatedAt: t0, ExpiresAt: at.Add(-time.Second)}
			if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
				t.Fatal(err)
			}
			return sid + "/0"
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sid := fmt.Sprintf("other-client-%d", i)
			presented := tc.prepare(t, sid)
			sessBefore, toksBefore := getSession(t, s, sid), tokensOf(t, s, sid)
			for _, client := range []string{"someone-else", "CLIENT-OF-U", "client-of-u "} {
				var calls atomic.Int32
				res, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{
					ParentSignature: presented, ClientID: client, Now: at, ReuseWindow: window, IdleTTL: idleTTL,
					NewChild: childFn(&calls, sid+"/stolen", at.Add(time.Hour)),
				})
				if err != nil {
					t.Fatalf("RotateRefreshToken by %q: %v", client, err)
				}
				if diff := cmp.Diff(storage.RotateResult{Outcome: storage.RotateNotFound}, res); diff != "" {
					t.Errorf("rotation by %q (-want +got):\n%s", client, diff)
				}
				if n := calls.Load(); n > 1 {
					t.Errorf("NewChild called %d times for another client, want at most once", n)
				}
			}
			if diff := cmp.Diff(sessBefore, getSession(t, s, sid), equateTimes); diff != "" {
				t.Errorf("session changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(toksBefore, tokensOf(t, s, sid), equateTimes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tokens changed (-before +after):\n%s", diff)
			}
		})
	}

	// The token's own client, named explicitly, rotates as usual.
	family(t, s, "own", nil)
	var calls atomic.Int32
	res, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{
		ParentSignature: "own/0", ClientID: "client-of-u", Now: at, ReuseWindow: window, IdleTTL: idleTTL,
		NewChild: childFn(&calls, "own/1", at.Add(time.Hour)),
	})
	if err != nil || res.Outcome != storage.RotateRotated || res.Child == nil || res.Child.Signature != "own/1" {
		t.Fatalf("rotation by the token's client: %+v, %v; want rotated into own/1", res, err)
	}
	// And presents the rotated parent again within the window: the replay,
	// not NotFound.
	res, err = s.RotateRefreshToken(t.Context(), storage.RotateRequest{
		ParentSignature: "own/0", ClientID: "client-of-u", Now: at.Add(time.Second), ReuseWindow: window, IdleTTL: idleTTL,
		NewChild: childFn(&calls, "own/2", at.Add(time.Hour)),
	})
	if err != nil || res.Outcome != storage.RotateReplayed || res.Child == nil || res.Child.Signature != "own/1" {
		t.Errorf("replay by the token's client: %+v, %v; want replayed own/1", res, err)
	}
}

// testRefreshTokenChildInheritsRequestData: a child that NewChild returns
// without RequestData gets its parent's, both stored and in the result, and
// through a chain; a child with its own keeps it.
func testRefreshTokenChildInheritsRequestData(t *testing.T, s *storage.Store) {
	family(t, s, "s", nil)
	parentData := tokenData("s/0")
	nilChild := func(sig string, at time.Time) func() (storage.RefreshToken, []byte, error) {
		return func() (storage.RefreshToken, []byte, error) {
			return storage.RefreshToken{Signature: sig, ExpiresAt: at.Add(time.Hour)}, sealedOf(sig), nil
		}
	}
	rotate := func(parent, child string, at time.Time, mk func() (storage.RefreshToken, []byte, error)) storage.RotateResult {
		t.Helper()
		res, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{
			ParentSignature: parent, Now: at, ReuseWindow: window, IdleTTL: idleTTL, NewChild: mk,
		})
		if err != nil || res.Outcome != storage.RotateRotated {
			t.Fatalf("rotate %s -> %s: %+v, %v; want rotated", parent, child, res, err)
		}
		return res
	}

	at := t0.Add(time.Minute)
	res := rotate("s/0", "s/1", at, nilChild("s/1", at))
	if !bytes.Equal(res.Child.RequestData, parentData) {
		t.Errorf("result child RequestData = %q, want the parent's %q", res.Child.RequestData, parentData)
	}
	if got := getToken(t, s, "s/1").RequestData; !bytes.Equal(got, parentData) {
		t.Errorf("stored child RequestData = %q, want the parent's %q", got, parentData)
	}
	// The parent keeps its own.
	if got := getToken(t, s, "s/0").RequestData; !bytes.Equal(got, parentData) {
		t.Errorf("parent RequestData = %q, want %q", got, parentData)
	}
	// A replay answers the child with the inherited data.
	rep, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{
		ParentSignature: "s/0", Now: at.Add(time.Second), ReuseWindow: window, IdleTTL: idleTTL, NewChild: nilChild("s/x", at),
	})
	if err != nil || rep.Outcome != storage.RotateReplayed || rep.Child == nil || !bytes.Equal(rep.Child.RequestData, parentData) {
		t.Errorf("replay: %+v, %v; want replayed s/1 with the parent's data", rep, err)
	}

	// Down a chain the first token's data is handed on.
	at2 := at.Add(time.Minute)
	rotate("s/1", "s/2", at2, nilChild("s/2", at2))
	if got := getToken(t, s, "s/2").RequestData; !bytes.Equal(got, parentData) {
		t.Errorf("grandchild RequestData = %q, want the first token's %q", got, parentData)
	}

	// A child with data of its own keeps it, and hands it on in turn.
	at3 := at2.Add(time.Minute)
	own := []byte("\x00new request\xff")
	rotate("s/2", "s/3", at3, func() (storage.RefreshToken, []byte, error) {
		return storage.RefreshToken{Signature: "s/3", ExpiresAt: at3.Add(time.Hour), RequestData: own}, sealedOf("s/3"), nil
	})
	if got := getToken(t, s, "s/3").RequestData; !bytes.Equal(got, own) {
		t.Errorf("child with its own RequestData stored %q, want %q", got, own)
	}
	at4 := at3.Add(time.Minute)
	rotate("s/3", "s/4", at4, nilChild("s/4", at4))
	if got := getToken(t, s, "s/4").RequestData; !bytes.Equal(got, own) {
		t.Errorf("child of s/3 RequestData = %q, want s/3's %q", got, own)
	}
	if diff := cmp.Diff([]string{"s/4"}, activeTokens(t, s, "s")); diff != "" {
		t.Errorf("active tokens (-want +got):\n%s", diff)
	}
}
