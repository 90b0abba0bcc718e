package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oauthd/oauthd/storage"
)

// Conformance cases for grant sessions and refresh-token families
// (docs/adr/0005-refresh-rotation-with-reuse-window.md).

// t0 is base cut to microseconds: these cases compare times at exact
// boundaries (a reuse window that just closed), and PostgreSQL rounds
// base's nanoseconds to the nearest microsecond, up.
var t0 = base.Truncate(time.Microsecond)

const (
	idleTTL = time.Hour
	window  = 10 * time.Second
)

// session returns a grant session of user created at created, idle until
// created+1h, ending at created+24h.
func session(id, user string, created time.Time) *storage.GrantSession {
	return &storage.GrantSession{
		ID:                id,
		UserID:            user,
		ClientID:          "client-of-" + user,
		Scope:             "openid offline_access",
		Audience:          []string{"https://api.example", "urn:other"},
		AuthTime:          created.Add(-time.Minute),
		CreatedAt:         created,
		IdleExpiresAt:     created.Add(idleTTL),
		AbsoluteExpiresAt: created.Add(24 * time.Hour),
		UserAgent:         "Mozilla/5.0 (X11; Linux x86_64)",
		IP:                "2001:db8::1",
	}
}

func createSession(t *testing.T, s *storage.Store, g *storage.GrantSession) {
	t.Helper()
	if err := s.CreateGrantSession(t.Context(), g); err != nil {
		t.Fatalf("CreateGrantSession(%q): %v", g.ID, err)
	}
}

func getSession(t *testing.T, s *storage.Store, id string) *storage.GrantSession {
	t.Helper()
	g, err := s.GetGrantSession(t.Context(), id)
	if err != nil {
		t.Fatalf("GetGrantSession(%q): %v", id, err)
	}
	return g
}

func activeSessionIDs(t *testing.T, s *storage.Store, user string, now time.Time) []string {
	t.Helper()
	gs, err := s.ListActiveGrantSessions(t.Context(), user, now)
	if err != nil {
		t.Fatalf("ListActiveGrantSessions(%q): %v", user, err)
	}
	ids := []string{}
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

// tokenData is the request data stored with token sig: binary, with NULs.
func tokenData(sig string) []byte { return []byte("\x00req\xff" + sig) }

// sealedOf is the "encrypted" child token the tests hand to storage.
func sealedOf(sig string) []byte { return []byte("sealed\x00" + sig) }

// issue stores the first refresh token sig of session sid, created at
// created and expiring 30 days later.
func issue(t *testing.T, s *storage.Store, sig, sid string, created time.Time) *storage.RefreshToken {
	t.Helper()
	rt := &storage.RefreshToken{Signature: sig, SessionID: sid, RequestData: tokenData(sig), CreatedAt: created, ExpiresAt: created.Add(30 * 24 * time.Hour)}
	if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
		t.Fatalf("CreateRefreshToken(%q): %v", sig, err)
	}
	return rt
}

func getToken(t *testing.T, s *storage.Store, sig string) *storage.RefreshToken {
	t.Helper()
	rt, err := s.GetRefreshToken(t.Context(), sig)
	if err != nil {
		t.Fatalf("GetRefreshToken(%q): %v", sig, err)
	}
	return rt
}

// rebind turns ? placeholders into PostgreSQL's $n.
func rebind(s *storage.Store, q string) string {
	if s.Dialect() != storage.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// tokensOf returns every refresh token of session sid, by signature.
func tokensOf(t *testing.T, s *storage.Store, sid string) []storage.RefreshToken {
	t.Helper()
	rows, err := s.SQLDB().QueryContext(t.Context(), rebind(s, "SELECT signature FROM refresh_tokens WHERE session_id = ? ORDER BY signature"), sid)
	if err != nil {
		t.Fatalf("list tokens of %q: %v", sid, err)
	}
	var sigs []string
	for rows.Next() {
		var sig string
		if err := rows.Scan(&sig); err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, sig)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	out := []storage.RefreshToken{}
	for _, sig := range sigs {
		out = append(out, *getToken(t, s, sig))
	}
	return out
}

// activeTokens returns the signatures of the active tokens of session sid.
func activeTokens(t *testing.T, s *storage.Store, sid string) []string {
	t.Helper()
	var out []string
	for _, rt := range tokensOf(t, s, sid) {
		if rt.State == storage.TokenActive {
			out = append(out, rt.Signature)
		}
	}
	return out
}

// childFn returns a NewChild that counts its calls and makes child sig.
func childFn(calls *atomic.Int32, sig string, exp time.Time) func() (storage.RefreshToken, []byte, error) {
	return func() (storage.RefreshToken, []byte, error) {
		calls.Add(1)
		return storage.RefreshToken{Signature: sig, ExpiresAt: exp, RequestData: tokenData(sig)}, sealedOf(sig), nil
	}
}

// rotateTo rotates parent into child at now with the reuse window w and
// fails unless that rotated.
func rotateTo(t *testing.T, s *storage.Store, parent, child string, now time.Time, w time.Duration) {
	t.Helper()
	var calls atomic.Int32
	res, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{
		ParentSignature: parent, Now: now, ReuseWindow: w, IdleTTL: idleTTL,
		NewChild: childFn(&calls, child, now.Add(30*24*time.Hour)),
	})
	if err != nil || res.Outcome != storage.RotateRotated {
		t.Fatalf("rotate %s -> %s at %s: %+v, %v; want rotated", parent, child, now, res, err)
	}
}

func testGrantSessionCreateGet(t *testing.T, s *storage.Store) {
	fixedClock(s, t0)
	want := session("sid-1", "alice", t0.Add(-time.Hour).In(zoneFar))
	want.LastUsedAt = t0.Add(-time.Minute).In(zoneWest)
	want.RevokedAt = ptr(t0.In(zoneEast))
	want.RevokedReason = "admin"
	createSession(t, s, want)
	if diff := cmp.Diff(want, getSession(t, s, "sid-1"), equateTimes); diff != "" {
		t.Errorf("GetGrantSession (-want +got):\n%s", diff)
	}

	// Defaults: CreatedAt from the store's clock, LastUsedAt = CreatedAt;
	// nil audience comes back empty.
	minimal := &storage.GrantSession{ID: "sid-2", UserID: "bob", ClientID: "c", AuthTime: t0, IdleExpiresAt: t0.Add(time.Hour), AbsoluteExpiresAt: t0.Add(time.Hour)}
	createSession(t, s, minimal)
	got := getSession(t, s, "sid-2")
	sameInstant(t, "CreatedAt", got.CreatedAt, t0)
	sameInstant(t, "LastUsedAt", got.LastUsedAt, t0)
	if len(got.Audience) != 0 || got.RevokedAt != nil || got.Scope != "" || got.IP != "" {
		t.Errorf("minimal session came back as %+v", got)
	}

	// An idle expiry past the absolute one is capped (pruning relies on
	// idle <= absolute).
	past := session("sid-3", "carol", t0)
	past.IdleExpiresAt = past.AbsoluteExpiresAt.Add(time.Hour)
	createSession(t, s, past)
	sameInstant(t, "capped IdleExpiresAt", getSession(t, s, "sid-3").IdleExpiresAt, past.AbsoluteExpiresAt)

	dup := session("sid-1", "mallory", t0)
	wantErr(t, "duplicate CreateGrantSession", s.CreateGrantSession(t.Context(), dup), storage.ErrConflict)
	if getSession(t, s, "sid-1").UserID != "alice" {
		t.Error("duplicate CreateGrantSession overwrote the session")
	}
	_, err := s.GetGrantSession(t.Context(), "sid-unknown")
	wantErr(t, "GetGrantSession(unknown)", err, storage.ErrNotFound)
}

func testGrantSessionListActive(t *testing.T, s *storage.Store) {
	now := t0
	type sess struct {
		id      string
		user    string
		created time.Duration // relative to now
		idle    time.Duration // idle expiry relative to now
		abs     time.Duration // absolute expiry relative to now
		revoked bool
	}
	sessions := []sess{
		{"old", "u", -3 * time.Hour, time.Hour, 20 * time.Hour, false},
		{"newest", "u", -time.Minute, time.Hour, 20 * time.Hour, false},
		// Same creation time: the id breaks the tie, descending.
		{"mid-a", "u", -time.Hour, time.Hour, 20 * time.Hour, false},
		{"mid-b", "u", -time.Hour, time.Hour, 20 * time.Hour, false},
		{"almost-idle", "u", -2 * time.Hour, time.Microsecond, 20 * time.Hour, false},
		{"revoked", "u", -time.Second, time.Hour, 20 * time.Hour, true},
		{"idle-now", "u", -time.Second, 0, 20 * time.Hour, false}, // an expiry equal to now has passed
		{"idle-past", "u", -time.Second, -time.Second, 20 * time.Hour, false},
		{"absolute-now", "u", -time.Second, time.Hour, 0, false},
		{"absolute-past", "u", -time.Second, time.Hour, -time.Minute, false},
		{"other-user", "v", -time.Second, time.Hour, 20 * time.Hour, false},
	}
	for _, x := range sessions {
		g := session(x.id, x.user, now.Add(x.created).In(zoneWest))
		g.IdleExpiresAt, g.AbsoluteExpiresAt = now.Add(x.idle).In(zoneFar), now.Add(x.abs).In(zoneEast)
		if x.revoked {
			g.RevokedAt = ptr(now.Add(-time.Millisecond))
		}
		createSession(t, s, g)
	}
	want := []string{"newest", "mid-b", "mid-a", "almost-idle", "old"}
	if diff := cmp.Diff(want, activeSessionIDs(t, s, "u", now)); diff != "" {
		t.Errorf("ListActiveGrantSessions (-want +got):\n%s", diff)
	}
	gs, err := s.ListActiveGrantSessions(t.Context(), "u", now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(getSession(t, s, "newest"), &gs[0], equateTimes); diff != "" {
		t.Errorf("listed session differs from GetGrantSession (-get +list):\n%s", diff)
	}
	// A little later "almost-idle" has gone idle.
	if diff := cmp.Diff([]string{"newest", "mid-b", "mid-a", "old"}, activeSessionIDs(t, s, "u", now.Add(time.Microsecond))); diff != "" {
		t.Errorf("ListActiveGrantSessions a microsecond later (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"other-user"}, activeSessionIDs(t, s, "v", now)); diff != "" {
		t.Errorf("ListActiveGrantSessions(v) (-want +got):\n%s", diff)
	}
	if ids := activeSessionIDs(t, s, "nobody", now); len(ids) != 0 {
		t.Errorf("ListActiveGrantSessions(nobody) = %q", ids)
	}
}

func testGrantSessionRevoke(t *testing.T, s *storage.Store) {
	now := t0.Add(time.Minute)
	for _, g := range []*storage.GrantSession{session("s1", "u", t0), session("s2", "u", t0), session("s3", "u", t0), session("bystander", "v", t0)} {
		createSession(t, s, g)
	}
	// s1 has a rotated token holding a sealed child, and the active child.
	issue(t, s, "s1/0", "s1", t0)
	rotateTo(t, s, "s1/0", "s1/1", t0.Add(time.Second), window)
	issue(t, s, "s2/0", "s2", t0)
	issue(t, s, "s3/0", "s3", t0)
	issue(t, s, "bystander/0", "bystander", t0)
	bystanderBefore := tokensOf(t, s, "bystander")

	if err := s.RevokeGrantSession(t.Context(), "s1", "user signed out", now); err != nil {
		t.Fatalf("RevokeGrantSession: %v", err)
	}
	g := getSession(t, s, "s1")
	if g.RevokedAt == nil || g.RevokedReason != "user signed out" {
		t.Fatalf("revoked session: %+v", g)
	}
	sameInstant(t, "RevokedAt", *g.RevokedAt, now)
	toks := tokensOf(t, s, "s1")
	if len(toks) != 2 {
		t.Fatalf("s1 has %d tokens, want 2", len(toks))
	}
	for _, rt := range toks {
		if rt.State != storage.TokenRevoked || rt.SuccessorSealed != nil {
			t.Errorf("token %s after session revoke: state %q, sealed %q; want revoked, no sealed child", rt.Signature, rt.State, rt.SuccessorSealed)
		}
	}

	// Idempotent: the first time and reason stay.
	if err := s.RevokeGrantSession(t.Context(), "s1", "again", now.Add(time.Hour)); err != nil {
		t.Errorf("second RevokeGrantSession: %v", err)
	}
	if g := getSession(t, s, "s1"); g.RevokedReason != "user signed out" || g.RevokedAt == nil {
		t.Errorf("second revoke changed the session: %+v", g)
	} else {
		sameInstant(t, "RevokedAt after a second revoke", *g.RevokedAt, now)
	}
	wantErr(t, "RevokeGrantSession(unknown)", s.RevokeGrantSession(t.Context(), "nope", "x", now), storage.ErrNotFound)

	// All of u's sessions: s1 was revoked already, so 2.
	n, err := s.RevokeUserGrantSessions(t.Context(), "u", "password changed", now.Add(time.Second))
	if err != nil || n != 2 {
		t.Errorf("RevokeUserGrantSessions = %d, %v; want 2", n, err)
	}
	for _, id := range []string{"s2", "s3"} {
		if g := getSession(t, s, id); g.RevokedAt == nil || g.RevokedReason != "password changed" {
			t.Errorf("session %s: %+v, want revoked for the password change", id, g)
		}
		if act := activeTokens(t, s, id); len(act) != 0 {
			t.Errorf("session %s keeps active tokens %q", id, act)
		}
	}
	if g := getSession(t, s, "s1"); g.RevokedReason != "user signed out" {
		t.Errorf("RevokeUserGrantSessions re-revoked s1: %+v", g)
	}
	if ids := activeSessionIDs(t, s, "u", now); len(ids) != 0 {
		t.Errorf("active sessions of u after revoking all: %q", ids)
	}
	// The other user is untouched.
	if getSession(t, s, "bystander").RevokedAt != nil {
		t.Error("another user's session was revoked")
	}
	if diff := cmp.Diff(bystanderBefore, tokensOf(t, s, "bystander"), equateTimes); diff != "" {
		t.Errorf("another user's tokens changed (-before +after):\n%s", diff)
	}
	if n, err := s.RevokeUserGrantSessions(t.Context(), "u", "again", now); err != nil || n != 0 {
		t.Errorf("second RevokeUserGrantSessions = %d, %v; want 0", n, err)
	}
}

func testGrantSessionTouch(t *testing.T, s *storage.Store) {
	cases := []struct {
		name    string
		at      time.Duration // when touched, after creation
		ttl     time.Duration
		abs     time.Duration // absolute expiry after creation (idle: +1h)
		revoked bool
		// wantIdle is the idle expiry after the touch, after creation; 0
		// means the touch must fail with ErrNotFound and change nothing.
		wantIdle time.Duration
	}{
		{"extends idle expiry", 30 * time.Minute, time.Hour, 24 * time.Hour, false, 90 * time.Minute},
		{"shorter ttl moves it back", 30 * time.Minute, time.Minute, 24 * time.Hour, false, 31 * time.Minute},
		{"capped at absolute expiry", 30 * time.Minute, time.Hour, 45 * time.Minute, false, 45 * time.Minute},
		{"no idle limit: absolute expiry", 30 * time.Minute, 0, 24 * time.Hour, false, 24 * time.Hour},
		{"idle-expired is not revived", time.Hour, time.Hour, 24 * time.Hour, false, 0},
		{"absolute-expired is not revived", 30 * time.Minute, time.Hour, 30 * time.Minute, false, 0},
		{"revoked is not revived", time.Minute, time.Hour, 24 * time.Hour, true, 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("touch-%d", i)
			g := session(id, "u", t0)
			g.AbsoluteExpiresAt = t0.Add(tc.abs)
			if tc.revoked {
				g.RevokedAt = ptr(t0)
			}
			createSession(t, s, g)
			before := getSession(t, s, id)
			at := t0.Add(tc.at).In(zoneWest)
			err := s.TouchGrantSession(t.Context(), id, at, tc.ttl)
			if tc.wantIdle == 0 {
				wantErr(t, "TouchGrantSession", err, storage.ErrNotFound)
				if diff := cmp.Diff(before, getSession(t, s, id), equateTimes); diff != "" {
					t.Errorf("a refused touch changed the session (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("TouchGrantSession: %v", err)
			}
			got := getSession(t, s, id)
			sameInstant(t, "LastUsedAt", got.LastUsedAt, at)
			sameInstant(t, "IdleExpiresAt", got.IdleExpiresAt, t0.Add(tc.wantIdle))
			sameInstant(t, "AbsoluteExpiresAt", got.AbsoluteExpiresAt, t0.Add(tc.abs))
		})
	}
	wantErr(t, "TouchGrantSession(unknown)", s.TouchGrantSession(t.Context(), "nope", t0, time.Hour), storage.ErrNotFound)
}

func testRefreshTokenCreate(t *testing.T, s *storage.Store) {
	fixedClock(s, t0)
	createSession(t, s, session("s", "u", t0))
	createSession(t, s, session("other", "u", t0))
	ended := session("ended", "u", t0)
	ended.RevokedAt = ptr(t0)
	createSession(t, s, ended)

	// ClientID empty: the session's; CreatedAt zero: the clock. A state
	// other than active is ignored.
	rt := &storage.RefreshToken{Signature: "sig-1", SessionID: "s", RequestData: tokenData("sig-1"), ExpiresAt: t0.Add(time.Hour).In(zoneFar), State: storage.TokenRevoked}
	if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
	want := &storage.RefreshToken{Signature: "sig-1", SessionID: "s", ClientID: "client-of-u", RequestData: tokenData("sig-1"),
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), State: storage.TokenActive}
	if diff := cmp.Diff(want, getToken(t, s, "sig-1"), equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("GetRefreshToken (-want +got):\n%s", diff)
	}

	cases := []struct {
		name   string
		rt     storage.RefreshToken
		target error
	}{
		{"second active token in the session", storage.RefreshToken{Signature: "sig-2", SessionID: "s", ExpiresAt: t0.Add(time.Hour)}, storage.ErrConflict},
		{"signature taken (other session)", storage.RefreshToken{Signature: "sig-1", SessionID: "other", ExpiresAt: t0.Add(time.Hour)}, storage.ErrConflict},
		{"unknown session", storage.RefreshToken{Signature: "sig-3", SessionID: "nope", ExpiresAt: t0.Add(time.Hour)}, storage.ErrNotFound},
		{"revoked session", storage.RefreshToken{Signature: "sig-4", SessionID: "ended", ExpiresAt: t0.Add(time.Hour)}, storage.ErrNotFound},
		{"session idle-expired at creation", storage.RefreshToken{Signature: "sig-5", SessionID: "other", CreatedAt: t0.Add(idleTTL), ExpiresAt: t0.Add(2 * time.Hour)}, storage.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateRefreshToken(t.Context(), &tc.rt)
			wantErr(t, "CreateRefreshToken", err, tc.target)
			if errors.Is(err, storage.ErrUnavailable) {
				t.Errorf("error %v also matches ErrUnavailable", err)
			}
		})
	}
	wantErr(t, "CreateRefreshToken with another client than the session's",
		s.CreateRefreshToken(t.Context(), &storage.RefreshToken{Signature: "sig-6", SessionID: "other", ClientID: "someone-else", ExpiresAt: t0.Add(time.Hour)}), storage.ErrConflict)
	if diff := cmp.Diff([]string{"sig-1"}, activeTokens(t, s, "s")); diff != "" {
		t.Errorf("active tokens of s (-want +got):\n%s", diff)
	}
	if toks := tokensOf(t, s, "other"); len(toks) != 0 {
		t.Errorf("refused creates left tokens in other: %+v", toks)
	}
	// A nil RequestData is stored (the column is NOT NULL) and comes back empty.
	if err := s.CreateRefreshToken(t.Context(), &storage.RefreshToken{Signature: "sig-7", SessionID: "other", ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatalf("CreateRefreshToken with nil RequestData: %v", err)
	}
	if rd := getToken(t, s, "sig-7").RequestData; len(rd) != 0 {
		t.Errorf("RequestData = %q, want empty", rd)
	}
	_, err := s.GetRefreshToken(t.Context(), "unknown")
	wantErr(t, "GetRefreshToken(unknown)", err, storage.ErrNotFound)
}

// testRefreshTokenOneActivePerSessionInDB: the one-active-token rule holds
// in the database itself, for writers that bypass the store.
func testRefreshTokenOneActivePerSessionInDB(t *testing.T, s *storage.Store) {
	createSession(t, s, session("s", "u", t0))
	issue(t, s, "a", "s", t0)
	rotateTo(t, s, "a", "b", t0.Add(time.Second), window)
	insert := rebind(s, "INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state) VALUES (?, 's', 'c', ?, ?, ?, ?)")
	ctx := t.Context()
	if _, err := s.SQLDB().ExecContext(ctx, insert, "c", []byte{1}, t0, t0.Add(time.Hour), "active"); err == nil {
		t.Error("a second active token was inserted with plain SQL")
	}
	if _, err := s.SQLDB().ExecContext(ctx, rebind(s, "UPDATE refresh_tokens SET state = 'active' WHERE signature = ?"), "a"); err == nil {
		t.Error("a rotated token was made active again next to the active one")
	}
	// Rotated and revoked tokens are not limited.
	if _, err := s.SQLDB().ExecContext(ctx, insert, "d", []byte{1}, t0, t0.Add(time.Hour), "rotated"); err != nil {
		t.Errorf("insert of a second rotated token: %v", err)
	}
	if _, err := s.SQLDB().ExecContext(ctx, insert, "e", []byte{1}, t0, t0.Add(time.Hour), "stolen"); err == nil {
		t.Error("a token with an unknown state was inserted")
	}
	if diff := cmp.Diff([]string{"b"}, activeTokens(t, s, "s")); diff != "" {
		t.Errorf("active tokens (-want +got):\n%s", diff)
	}
}

// family is a grant session with its first refresh token sid+"/0", as the
// rotation cases start from.
func family(t *testing.T, s *storage.Store, sid string, mod func(*storage.GrantSession)) {
	t.Helper()
	g := session(sid, "u", t0)
	if mod != nil {
		mod(g)
	}
	createSession(t, s, g)
	issue(t, s, sid+"/0", sid, t0)
}

func testRefreshTokenRotateOutcomes(t *testing.T, s *storage.Store) {
	at := t0.Add(time.Minute) // when most cases present their token
	cases := []struct {
		name string
		// prepare builds the family of sid and returns the token to present
		// and when. The session is live at t0 with token sid/0 active.
		prepare func(t *testing.T, sid string) (string, time.Time)
		window  time.Duration
		want    storage.RotateOutcome
		// wantChild is the child in the result (sid-relative), for rotated
		// and replayed.
		wantChild string
		check     func(t *testing.T, sid string, res storage.RotateResult)
		// prunes: prepare prunes every family, not just its own.
		prunes bool
	}{
		{
			name: "active token rotates",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				return sid + "/0", at
			},
			window: window, want: storage.RotateRotated, wantChild: "/new",
			check: func(t *testing.T, sid string, res storage.RotateResult) {
				parent := getToken(t, s, sid+"/0")
				if parent.State != storage.TokenRotated || parent.SuccessorSignature != sid+"/new" || !bytes.Equal(parent.SuccessorSealed, sealedOf(sid+"/new")) || parent.RotatedAt == nil {
					t.Fatalf("parent after rotation: %+v", parent)
				}
				sameInstant(t, "parent RotatedAt", *parent.RotatedAt, at)
				child := getToken(t, s, sid+"/new")
				want := &storage.RefreshToken{Signature: sid + "/new", SessionID: sid, ClientID: "client-of-u", RequestData: tokenData(sid + "/new"),
					CreatedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour), State: storage.TokenActive}
				if diff := cmp.Diff(want, child, equateTimes, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("stored child (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(want, res.Child, equateTimes, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("result child (-want +got):\n%s", diff)
				}
				g := getSession(t, s, sid)
				sameInstant(t, "session LastUsedAt", g.LastUsedAt, at)
				sameInstant(t, "session IdleExpiresAt", g.IdleExpiresAt, at.Add(idleTTL))
			},
		},
		{
			name: "rotation near the absolute expiry caps the idle expiry",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, func(g *storage.GrantSession) { g.AbsoluteExpiresAt = t0.Add(30 * time.Minute) })
				return sid + "/0", at
			},
			window: window, want: storage.RotateRotated, wantChild: "/new",
			check: func(t *testing.T, sid string, _ storage.RotateResult) {
				sameInstant(t, "session IdleExpiresAt", getSession(t, s, sid).IdleExpiresAt, t0.Add(30*time.Minute))
			},
		},
		{
			name: "window 0 keeps no sealed child",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				return sid + "/0", at
			},
			window: 0, want: storage.RotateRotated, wantChild: "/new",
			check: func(t *testing.T, sid string, _ storage.RotateResult) {
				if p := getToken(t, s, sid+"/0"); p.SuccessorSealed != nil || p.SuccessorSignature != sid+"/new" {
					t.Errorf("parent with window 0: %+v, want the successor's signature and no sealed child", p)
				}
			},
		},
		{
			name: "replay within the window returns the same child",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				return sid + "/0", at.Add(window - time.Microsecond)
			},
			window: window, want: storage.RotateReplayed, wantChild: "/1",
		},
		{
			name: "replay of the current token's parent after a chain",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				rotateTo(t, s, sid+"/1", sid+"/2", at.Add(time.Second), window)
				return sid + "/1", at.Add(2 * time.Second)
			},
			window: window, want: storage.RotateReplayed, wantChild: "/2",
		},
		{
			name: "replay from a clock slightly behind the rotation's",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				return sid + "/0", at.Add(-time.Second)
			},
			window: window, want: storage.RotateReplayed, wantChild: "/1",
		},
		{
			name: "a request without window does not replay a kept child",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				return sid + "/0", at.Add(-time.Second) // even from a clock behind
			},
			window: 0, want: storage.RotateTheft,
		},
		{
			name: "reuse when the window has just closed is theft",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				return sid + "/0", at.Add(window)
			},
			window: window, want: storage.RotateTheft,
		},
		{
			name: "reuse long after the window is theft",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				return sid + "/0", at.Add(30 * time.Minute)
			},
			window: window, want: storage.RotateTheft,
		},
		{
			name: "older ancestor inside the window is theft",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				rotateTo(t, s, sid+"/1", sid+"/2", at.Add(time.Second), window)
				return sid + "/0", at.Add(2 * time.Second)
			},
			window: window, want: storage.RotateTheft,
		},
		{
			name: "reuse with window 0 is theft",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, 0)
				return sid + "/0", at
			},
			window: 0, want: storage.RotateTheft,
		},
		{
			name: "reuse after the sealed child was pruned is theft",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				// Pruned with a shorter window than this request's.
				if _, err := s.PruneExpired(t.Context(), at.Add(5*time.Second), storage.PruneOptions{ReuseWindow: 5 * time.Second}); err != nil {
					t.Fatal(err)
				}
				return sid + "/0", at.Add(6 * time.Second)
			},
			window: window, want: storage.RotateTheft, prunes: true,
		},
		{
			name: "active token of a revoked session",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				if err := s.RevokeGrantSession(t.Context(), sid, "signed out", at); err != nil {
					t.Fatal(err)
				}
				return sid + "/0", at.Add(time.Second)
			},
			window: window, want: storage.RotateRevoked,
		},
		{
			name: "rotated token of a revoked session, inside the window",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				if err := s.RevokeGrantSession(t.Context(), sid, "signed out", at); err != nil {
					t.Fatal(err)
				}
				return sid + "/0", at.Add(time.Second)
			},
			window: window, want: storage.RotateRevoked,
		},
		{
			name: "revoked child of a revoked session",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				rotateTo(t, s, sid+"/0", sid+"/1", at, window)
				if err := s.RevokeGrantSession(t.Context(), sid, "signed out", at); err != nil {
					t.Fatal(err)
				}
				return sid + "/1", at.Add(time.Second)
			},
			window: window, want: storage.RotateRevoked,
		},
		{
			name: "session idle-expired",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				return sid + "/0", t0.Add(idleTTL)
			},
			window: window, want: storage.RotateRevoked,
		},
		{
			name: "session absolute-expired",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, func(g *storage.GrantSession) { g.AbsoluteExpiresAt = t0.Add(time.Minute) })
				return sid + "/0", t0.Add(time.Minute)
			},
			window: window, want: storage.RotateRevoked,
		},
		{
			name: "expired token",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				createSession(t, s, session(sid, "u", t0))
				rt := &storage.RefreshToken{Signature: sid + "/0", SessionID: sid, CreatedAt: t0, ExpiresAt: at}
				if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
					t.Fatal(err)
				}
				return sid + "/0", at
			},
			window: window, want: storage.RotateExpired,
		},
		{
			name: "unknown token",
			prepare: func(t *testing.T, sid string) (string, time.Time) {
				family(t, s, sid, nil)
				return sid + "/unknown", at
			},
			window: window, want: storage.RotateNotFound,
		},
	}
	// rotation is one case's rotation: what it presents, when, and the
	// family before.
	type rotation struct {
		present    string
		now        time.Time
		sessBefore *storage.GrantSession
		toksBefore []storage.RefreshToken
		calls      atomic.Int32
		rotate     func(ctx context.Context) (storage.RotateResult, error)
	}
	prepare := func(t *testing.T, i int, sid string) *rotation {
		tc := cases[i]
		r := &rotation{}
		r.present, r.now = tc.prepare(t, sid)
		r.sessBefore, r.toksBefore = getSession(t, s, sid), tokensOf(t, s, sid)
		r.rotate = func(ctx context.Context) (storage.RotateResult, error) {
			return s.RotateRefreshToken(ctx, storage.RotateRequest{
				ParentSignature: r.present, Now: r.now, ReuseWindow: tc.window, IdleTTL: idleTTL,
				NewChild: childFn(&r.calls, sid+"/new", r.now.Add(30*24*time.Hour)),
			})
		}
		return r
	}
	verify := func(t *testing.T, i int, sid string, r *rotation, res storage.RotateResult, err error) {
		tc, present, now, sessBefore, toksBefore := cases[i], r.present, r.now, r.sessBefore, r.toksBefore
		if err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}
		if res.Outcome != tc.want {
			t.Fatalf("outcome %q, want %q (result %+v)", res.Outcome, tc.want, res)
		}
		// A child may be made before storage knows it is needed, but
		// only once, and only a rotation stores it (checked below).
		if got := r.calls.Load(); got > 1 || (tc.want == storage.RotateRotated && got != 1) {
			t.Errorf("NewChild called %d times for outcome %s", got, tc.want)
		}
		switch {
		case tc.want == storage.RotateNotFound:
			if res.SessionID != "" || res.Parent != nil || res.Child != nil {
				t.Errorf("not-found result carries data: %+v", res)
			}
		case res.SessionID != sid || res.Parent == nil || res.Parent.Signature != present:
			t.Errorf("result names session %q, parent %+v; want %q, %q", res.SessionID, res.Parent, sid, present)
		}
		if tc.wantChild != "" {
			if res.Child == nil || res.Child.Signature != sid+tc.wantChild || !bytes.Equal(res.Sealed, sealedOf(sid+tc.wantChild)) {
				t.Errorf("result child %+v, sealed %q; want %s%s and its sealed form", res.Child, res.Sealed, sid, tc.wantChild)
			}
			if diff := cmp.Diff([]string{sid + tc.wantChild}, activeTokens(t, s, sid)); diff != "" {
				t.Errorf("active tokens (-want +got):\n%s", diff)
			}
		} else if res.Child != nil || res.Sealed != nil {
			t.Errorf("outcome %q carries a child: %+v, %q", res.Outcome, res.Child, res.Sealed)
		}
		switch tc.want {
		case storage.RotateTheft:
			g := getSession(t, s, sid)
			if g.RevokedAt == nil || g.RevokedReason != storage.ReasonRefreshTokenReuse {
				t.Errorf("session after theft: revoked %v, reason %q; want revoked for %q", g.RevokedAt, g.RevokedReason, storage.ReasonRefreshTokenReuse)
			} else {
				sameInstant(t, "RevokedAt", *g.RevokedAt, now)
			}
			for _, rt := range tokensOf(t, s, sid) {
				if rt.State != storage.TokenRevoked || rt.SuccessorSealed != nil {
					t.Errorf("token %s after theft: state %q, sealed %q", rt.Signature, rt.State, rt.SuccessorSealed)
				}
			}
		case storage.RotateNotFound, storage.RotateRevoked, storage.RotateExpired, storage.RotateReplayed:
			if diff := cmp.Diff(sessBefore, getSession(t, s, sid), equateTimes); diff != "" {
				t.Errorf("outcome %q changed the session (-before +after):\n%s", res.Outcome, diff)
			}
			if diff := cmp.Diff(toksBefore, tokensOf(t, s, sid), equateTimes); diff != "" {
				t.Errorf("outcome %q changed the tokens (-before +after):\n%s", res.Outcome, diff)
			}
		}
		if tc.check != nil {
			tc.check(t, sid, res)
		}
	}
	// Each case runs on its own, and inside a caller's transaction, where
	// storage takes its general path rather than the one-statement rotation.
	for _, inTx := range []bool{false, true} {
		for i, tc := range cases {
			name, sid := tc.name, fmt.Sprintf("fam-%02d", i)
			if inTx {
				name, sid = "in a transaction: "+tc.name, fmt.Sprintf("fam-tx-%02d", i)
			}
			t.Run(name, func(t *testing.T) {
				r := prepare(t, i, sid)
				var res storage.RotateResult
				var err error
				if inTx {
					err = s.WithTx(t.Context(), func(ctx context.Context) error {
						res, err = r.rotate(ctx)
						return err
					})
				} else {
					res, err = r.rotate(t.Context())
				}
				verify(t, i, sid, r, res, err)
			})
		}
	}
	// And all at once, each in its own family: the database's grouped
	// writes then carry rotations of every outcome side by side, and each
	// must come out as it does alone.
	t.Run("all at once", func(t *testing.T) {
		rs := make([]*rotation, len(cases))
		for _, pruning := range []bool{true, false} { // before the others are made
			for i, tc := range cases {
				if tc.prunes == pruning {
					rs[i] = prepare(t, i, fmt.Sprintf("fam-all-%02d", i))
				}
			}
		}
		results, errs := make([]storage.RotateResult, len(cases)), make([]error, len(cases))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range cases {
			wg.Go(func() {
				<-start
				results[i], errs[i] = rs[i].rotate(context.WithoutCancel(t.Context()))
			})
		}
		close(start)
		wg.Wait()
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				verify(t, i, fmt.Sprintf("fam-all-%02d", i), rs[i], results[i], errs[i])
			})
		}
	})

	t.Run("NewChild error rolls back", func(t *testing.T) {
		family(t, s, "fam-err", nil)
		before := tokensOf(t, s, "fam-err")
		boom := errors.New("boom")
		_, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{
			ParentSignature: "fam-err/0", Now: at, ReuseWindow: window,
			NewChild: func() (storage.RefreshToken, []byte, error) { return storage.RefreshToken{}, nil, boom },
		})
		if !errors.Is(err, boom) {
			t.Errorf("RotateRefreshToken: %v, want NewChild's error", err)
		}
		if diff := cmp.Diff(before, tokensOf(t, s, "fam-err"), equateTimes); diff != "" {
			t.Errorf("tokens changed (-before +after):\n%s", diff)
		}
	})
	t.Run("child signature taken", func(t *testing.T) {
		family(t, s, "fam-dup", nil)
		var calls atomic.Int32
		_, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{
			ParentSignature: "fam-dup/0", Now: at, ReuseWindow: window,
			NewChild: childFn(&calls, "fam-00/0", at.Add(time.Hour)), // another family's token
		})
		wantErr(t, "RotateRefreshToken with a taken child signature", err, storage.ErrConflict)
		if got := getToken(t, s, "fam-dup/0"); got.State != storage.TokenActive {
			t.Errorf("parent after a failed rotation: %+v, want still active", got)
		}
	})
}

// testRefreshTokenRotateConcurrent: 100 rotations of one token at once. With
// a reuse window every caller gets the same child; without one, exactly one
// rotates and the family ends revoked (concurrent duplicates are then
// indistinguishable from theft). Never an error.
func testRefreshTokenRotateConcurrent(t *testing.T, s *storage.Store) {
	const n = 100
	cases := []struct {
		name   string
		window time.Duration
	}{
		{"window 10s", 10 * time.Second},
		{"window 0", 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sid := fmt.Sprintf("conc-%d", i)
			family(t, s, sid, nil)
			now := t0.Add(time.Minute)
			var (
				wg      sync.WaitGroup
				calls   atomic.Int32
				start   = make(chan struct{})
				results = make([]storage.RotateResult, n)
				errs    = make([]error, n)
			)
			for j := range n {
				wg.Go(func() {
					<-start
					results[j], errs[j] = s.RotateRefreshToken(context.WithoutCancel(t.Context()), storage.RotateRequest{
						ParentSignature: sid + "/0", Now: now, ReuseWindow: tc.window, IdleTTL: idleTTL,
						// A different child per caller: unserialised
						// rotations would hand out different tokens.
						NewChild: childFn(&calls, fmt.Sprintf("%s/child-%03d", sid, j), now.Add(time.Hour)),
					})
				})
			}
			began := time.Now()
			close(start)
			wg.Wait()
			elapsed := time.Since(began)
			t.Logf("%d concurrent rotations on %s, %s: %s", n, s.Dialect(), tc.name, elapsed)

			count := map[storage.RotateOutcome]int{}
			children := map[string]bool{}
			for j := range n {
				if errs[j] != nil {
					t.Errorf("caller %d: %v", j, errs[j])
					continue
				}
				count[results[j].Outcome]++
				if c := results[j].Child; c != nil {
					children[c.Signature] = true
					if !bytes.Equal(results[j].Sealed, sealedOf(c.Signature)) {
						t.Errorf("caller %d: sealed %q does not belong to child %s", j, results[j].Sealed, c.Signature)
					}
				}
			}
			if got := calls.Load(); got < 1 || got > n {
				t.Errorf("NewChild called %d times in all, want 1 to %d (at most once per caller)", got, n)
			}
			if count[storage.RotateRotated] != 1 {
				t.Errorf("outcomes %v: want exactly one rotated", count)
			}
			g := getSession(t, s, sid)
			if tc.window > 0 {
				if count[storage.RotateReplayed] != n-1 {
					t.Errorf("outcomes %v: want %d replayed", count, n-1)
				}
				if len(children) != 1 {
					t.Errorf("%d distinct children handed out, want 1: %v", len(children), children)
				}
				act := activeTokens(t, s, sid)
				if len(act) != 1 || !children[act[0]] {
					t.Errorf("active tokens afterwards %q, want exactly the child %v", act, children)
				}
				if g.RevokedAt != nil {
					t.Errorf("session revoked: %+v", g)
				}
				return
			}
			if count[storage.RotateTheft] != 1 || count[storage.RotateRevoked] != n-2 {
				t.Errorf("outcomes %v: want 1 theft and %d revoked", count, n-2)
			}
			if g.RevokedAt == nil || g.RevokedReason != storage.ReasonRefreshTokenReuse {
				t.Errorf("session after concurrent reuse with window 0: %+v, want revoked for reuse", g)
			}
			if act := activeTokens(t, s, sid); len(act) != 0 {
				t.Errorf("active tokens afterwards %q, want none", act)
			}
		})
	}
}

// testRefreshTokenRotationChain: five rotations in a row keep exactly one
// active token, and every parent points to its child.
func testRefreshTokenRotationChain(t *testing.T, s *storage.Store) {
	family(t, s, "chain", nil)
	sig := func(i int) string { return fmt.Sprintf("chain/%d", i) }
	for i := 1; i <= 5; i++ {
		rotateTo(t, s, sig(i-1), sig(i), t0.Add(time.Duration(i)*time.Minute), window)
		if diff := cmp.Diff([]string{sig(i)}, activeTokens(t, s, "chain")); diff != "" {
			t.Fatalf("after rotation %d, active tokens (-want +got):\n%s", i, diff)
		}
	}
	toks := tokensOf(t, s, "chain")
	if len(toks) != 6 {
		t.Fatalf("%d tokens in the family, want 6", len(toks))
	}
	for i, rt := range toks { // ordered by signature: chain/0 .. chain/5
		if rt.Signature != sig(i) {
			t.Fatalf("token %d is %s", i, rt.Signature)
		}
		if i == 5 {
			if rt.State != storage.TokenActive || rt.SuccessorSignature != "" || rt.RotatedAt != nil {
				t.Errorf("last token: %+v, want active without successor", rt)
			}
			continue
		}
		if rt.State != storage.TokenRotated || rt.SuccessorSignature != sig(i+1) || rt.RotatedAt == nil {
			t.Errorf("token %s: state %q, successor %q; want rotated into %s", rt.Signature, rt.State, rt.SuccessorSignature, sig(i+1))
			continue
		}
		sameInstant(t, rt.Signature+" RotatedAt", *rt.RotatedAt, t0.Add(time.Duration(i+1)*time.Minute))
	}
	sameInstant(t, "session LastUsedAt", getSession(t, s, "chain").LastUsedAt, t0.Add(5*time.Minute))
}

// testPruneRefreshTokensAndSessions: pruning clears sealed children once the
// reuse window has passed, deletes expired tokens and sessions that ended
// more than a day ago (with their tokens), in batches, and keeps the rest.
func testPruneRefreshTokensAndSessions(t *testing.T, s *storage.Store) {
	now := t0.Add(48 * time.Hour)
	ctx := t.Context()

	// A live family rotated three times: 11s ago, exactly 10s ago (the
	// window has just closed), 5s ago.
	createSession(t, s, session("live", "u", now.Add(-time.Minute)))
	issue(t, s, "live/0", "live", now.Add(-time.Minute))
	rotateTo(t, s, "live/0", "live/1", now.Add(-11*time.Second), window)
	rotateTo(t, s, "live/1", "live/2", now.Add(-10*time.Second), window)
	rotateTo(t, s, "live/2", "live/3", now.Add(-5*time.Second), window)

	// A live session whose only token has expired.
	createSession(t, s, session("expired-token", "u", now.Add(-time.Minute)))
	if err := s.CreateRefreshToken(ctx, &storage.RefreshToken{Signature: "expired-token/0", SessionID: "expired-token", CreatedAt: now.Add(-time.Minute), ExpiresAt: now}); err != nil {
		t.Fatal(err)
	}

	// Sessions that ended, each with a token that would outlive it.
	type ended struct {
		id   string
		mod  func(g *storage.GrantSession)
		gone bool
	}
	endeds := []ended{
		{"revoked-25h", func(g *storage.GrantSession) { g.RevokedAt = ptr(now.Add(-25 * time.Hour)) }, true},
		{"revoked-23h", func(g *storage.GrantSession) { g.RevokedAt = ptr(now.Add(-23 * time.Hour)) }, false},
		// The idle expiry never passes the absolute one (storage caps it).
		{"absolute-25h", func(g *storage.GrantSession) {
			g.AbsoluteExpiresAt = now.Add(-25 * time.Hour)
			g.IdleExpiresAt = g.AbsoluteExpiresAt
		}, true},
		{"idle-25h", func(g *storage.GrantSession) { g.IdleExpiresAt = now.Add(-25 * time.Hour) }, true},
		{"idle-1h", func(g *storage.GrantSession) { g.IdleExpiresAt = now.Add(-time.Hour) }, false},
	}
	const bulk = 1010 // more than one pruning batch (1000)
	created := now.Add(-47 * time.Hour)
	addEnded := func(ctx context.Context, id string, mod func(*storage.GrantSession)) error {
		g := session(id, "u", created)
		g.IdleExpiresAt, g.AbsoluteExpiresAt = now.Add(time.Hour), now.Add(24*time.Hour)
		if err := s.CreateGrantSession(ctx, g); err != nil {
			return err
		}
		if err := s.CreateRefreshToken(ctx, &storage.RefreshToken{Signature: id + "/0", SessionID: id, CreatedAt: created, ExpiresAt: now.Add(time.Hour)}); err != nil {
			return err
		}
		// End it after the token was issued (which needs a live session).
		mod(g)
		var revoked any
		if g.RevokedAt != nil {
			revoked = g.RevokedAt.UTC()
		}
		_, err := s.SQLDB().ExecContext(ctx, rebind(s, "UPDATE grant_sessions SET revoked_at = ?, idle_expires_at = ?, absolute_expires_at = ? WHERE id = ?"),
			revoked, g.IdleExpiresAt.UTC(), g.AbsoluteExpiresAt.UTC(), id)
		return err
	}
	for _, e := range endeds {
		if err := addEnded(ctx, e.id, e.mod); err != nil {
			t.Fatalf("ended session %s: %v", e.id, err)
		}
	}
	// The bulk in one transaction (fast), revoked together afterwards.
	if err := s.WithTx(ctx, func(ctx context.Context) error {
		for i := range bulk {
			id := fmt.Sprintf("bulk-%04d", i)
			if err := s.CreateGrantSession(ctx, session(id, "u", created)); err != nil {
				return err
			}
			if err := s.CreateRefreshToken(ctx, &storage.RefreshToken{Signature: id + "/0", SessionID: id, CreatedAt: created, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("bulk sessions: %v", err)
	}
	if _, err := s.SQLDB().ExecContext(ctx, rebind(s, "UPDATE grant_sessions SET revoked_at = ?, absolute_expires_at = ? WHERE id LIKE 'bulk-%'"),
		now.Add(-30*time.Hour), now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}

	n, err := s.PruneExpired(ctx, now, storage.PruneOptions{ReuseWindow: window})
	if err != nil {
		t.Fatalf("PruneExpired: %v", err)
	}
	// 2 sealed children cleared, 1 expired token, 3 + bulk sessions.
	if want := int64(2 + 1 + 3 + bulk); n != want {
		t.Errorf("PruneExpired = %d, want %d", n, want)
	}

	for sig, wantSealed := range map[string]bool{"live/0": false, "live/1": false, "live/2": true} {
		rt := getToken(t, s, sig)
		if rt.State != storage.TokenRotated {
			t.Errorf("%s: state %q, want rotated (kept until it expires)", sig, rt.State)
		}
		if got := rt.SuccessorSealed != nil; got != wantSealed {
			t.Errorf("%s: sealed child kept = %v, want %v", sig, got, wantSealed)
		}
	}
	if getToken(t, s, "live/3").State != storage.TokenActive {
		t.Error("live/3 is no longer active")
	}
	if _, err := s.GetRefreshToken(ctx, "expired-token/0"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("expired token: %v, want ErrNotFound (pruned)", err)
	}
	getSession(t, s, "expired-token")
	getSession(t, s, "live")
	for _, e := range append(endeds, ended{id: "bulk-0000", gone: true}, ended{id: fmt.Sprintf("bulk-%04d", bulk-1), gone: true}) {
		_, errS := s.GetGrantSession(ctx, e.id)
		_, errT := s.GetRefreshToken(ctx, e.id+"/0")
		if e.gone && (!errors.Is(errS, storage.ErrNotFound) || !errors.Is(errT, storage.ErrNotFound)) {
			t.Errorf("session %s: %v, token: %v; want both pruned", e.id, errS, errT)
		}
		if !e.gone && (errS != nil || errT != nil) {
			t.Errorf("session %s: %v, token: %v; want both kept", e.id, errS, errT)
		}
	}
	var left int64
	if err := s.SQLDB().QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id LIKE 'bulk-%'").Scan(&left); err != nil || left != 0 {
		t.Errorf("%d tokens of pruned sessions left (%v), want 0", left, err)
	}

	// Nothing more to do: a second round prunes nothing, and a replay
	// inside the window still works.
	if n, err := s.PruneExpired(ctx, now, storage.PruneOptions{ReuseWindow: window}); err != nil || n != 0 {
		t.Errorf("second PruneExpired = %d, %v; want 0", n, err)
	}
	var calls atomic.Int32
	res, err := s.RotateRefreshToken(ctx, storage.RotateRequest{ParentSignature: "live/2", Now: now, ReuseWindow: window, IdleTTL: idleTTL, NewChild: childFn(&calls, "x", now.Add(time.Hour))})
	if err != nil || res.Outcome != storage.RotateReplayed || res.Child.Signature != "live/3" {
		t.Errorf("replay after pruning: %+v, %v; want live/3 replayed", res, err)
	}
	if ids := slices.Sorted(slices.Values(activeSessionIDs(t, s, "u", now))); !slices.Equal(ids, []string{"expired-token", "live"}) {
		t.Errorf("active sessions after pruning: %q", ids)
	}
}

// testRevokeUserWhileRotating: revoking every session of a user while each
// of them is being rotated. Rotations and the revocation lock sessions in
// the same order, so neither fails; afterwards every session is revoked
// and no token of them is active.
func testRevokeUserWhileRotating(t *testing.T, s *storage.Store) {
	const families, rounds = 24, 3
	for round := range rounds {
		user := fmt.Sprintf("busy-%d", round)
		sids := make([]string, families)
		for i := range sids {
			sids[i] = fmt.Sprintf("busy-%d-%02d", round, i)
		}
		// Stored in the reverse of their ids' order, so that a statement
		// locking them in storage order meets the rotations the other way.
		for i := range sids {
			sid := sids[len(sids)-1-i]
			createSession(t, s, session(sid, user, t0))
			issue(t, s, sid+"/0", sid, t0)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, families*20+1)
		for _, sid := range sids {
			wg.Go(func() {
				<-start
				for k := range 20 {
					now := t0.Add(time.Duration(k+1) * time.Second)
					var calls atomic.Int32
					res, err := s.RotateRefreshToken(context.WithoutCancel(t.Context()), storage.RotateRequest{
						ParentSignature: fmt.Sprintf("%s/%d", sid, k), Now: now, ReuseWindow: window, IdleTTL: idleTTL,
						NewChild: childFn(&calls, fmt.Sprintf("%s/%d", sid, k+1), now.Add(time.Hour)),
					})
					if err != nil {
						errs <- fmt.Errorf("rotate %s/%d: %w", sid, k, err)
						return
					}
					if res.Outcome != storage.RotateRotated {
						return // revoked under it
					}
				}
			})
		}
		wg.Go(func() {
			<-start
			time.Sleep(time.Duration(round) * time.Millisecond)
			if _, err := s.RevokeUserGrantSessions(context.WithoutCancel(t.Context()), user, storage.ReasonAdmin, t0.Add(time.Second)); err != nil {
				errs <- fmt.Errorf("revoke the user's sessions: %w", err)
			}
		})
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		for _, sid := range sids {
			if g := getSession(t, s, sid); g.RevokedAt == nil {
				t.Errorf("round %d: session %s not revoked", round, sid)
			}
			if act := activeTokens(t, s, sid); len(act) != 0 {
				t.Errorf("round %d: session %s has active tokens %v after its revocation", round, sid, act)
			}
		}
	}
}
