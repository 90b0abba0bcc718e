package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oauthd/oauthd/storage"
)

// Conformance cases for authorization codes, OpenID Connect requests, pushed authorization requests, the access-token denylist and
// browser sessions.

func authCode(sig string, created time.Time) *storage.AuthorizationCode {
	return &storage.AuthorizationCode{
		Signature:   sig,
		SessionID:   "sid-" + sig,
		ClientID:    "client-" + sig,
		RequestData: tokenData(sig),
		CreatedAt:   created,
		ExpiresAt:   created.Add(time.Minute),
	}
}

func createCode(t *testing.T, s *storage.Store, c *storage.AuthorizationCode) {
	t.Helper()
	if err := s.CreateAuthorizationCode(t.Context(), c); err != nil {
		t.Fatalf("CreateAuthorizationCode(%q): %v", c.Signature, err)
	}
}

func testAuthorizationCodeCreateGetInvalidate(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	want := authCode("code-sig", t0.In(zoneEast))
	createCode(t, s, want)
	got, err := s.GetAuthorizationCode(ctx, "code-sig")
	if err != nil {
		t.Fatalf("GetAuthorizationCode: %v", err)
	}
	if diff := cmp.Diff(want, got, equateTimes); diff != "" {
		t.Errorf("GetAuthorizationCode mismatch (-want +got):\n%s", diff)
	}

	// CreatedAt defaults to the store's clock.
	fixedClock(s, t0.Add(time.Hour))
	dflt := authCode("defaulted", time.Time{})
	createCode(t, s, dflt)
	if got, err := s.GetAuthorizationCode(ctx, "defaulted"); err != nil {
		t.Errorf("GetAuthorizationCode(defaulted): %v", err)
	} else {
		sameInstant(t, "defaulted CreatedAt", got.CreatedAt, t0.Add(time.Hour))
	}

	wantErr(t, "CreateAuthorizationCode(duplicate)", s.CreateAuthorizationCode(ctx, authCode("code-sig", t0)), storage.ErrConflict)
	_, err = s.GetAuthorizationCode(ctx, "unknown")
	wantErr(t, "GetAuthorizationCode(unknown)", err, storage.ErrNotFound)
	wantErr(t, "InvalidateAuthorizationCode(unknown)", s.InvalidateAuthorizationCode(ctx, "unknown", t0), storage.ErrNotFound)

	used := t0.Add(10 * time.Second).In(zoneWest)
	if err := s.InvalidateAuthorizationCode(ctx, "code-sig", used); err != nil {
		t.Fatalf("InvalidateAuthorizationCode: %v", err)
	}
	wantErr(t, "InvalidateAuthorizationCode(again)", s.InvalidateAuthorizationCode(ctx, "code-sig", used.Add(time.Second)), storage.ErrConflict)
	got, err = s.GetAuthorizationCode(ctx, "code-sig")
	if err != nil {
		t.Fatalf("GetAuthorizationCode(used): %v", err)
	}
	want.UsedAt = &used
	if diff := cmp.Diff(want, got, equateTimes); diff != "" {
		t.Errorf("GetAuthorizationCode(used) mismatch; the first use must be kept (-want +got):\n%s", diff)
	}
	// The other code is untouched.
	if got, err := s.GetAuthorizationCode(ctx, "defaulted"); err != nil || got.UsedAt != nil {
		t.Errorf("GetAuthorizationCode(defaulted) = %+v, %v; want it unused", got, err)
	}
}

// concurrently runs fn n times at once and counts nil results; every other
// result must be errors.Is(err, other).
func concurrently(t *testing.T, n int, other error, fn func() error) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn()
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, other):
			t.Errorf("call %d: %v, want nil or %v", i, err, other)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent calls succeeded, want exactly 1", ok, n)
	}
}

func testAuthorizationCodeInvalidateConcurrent(t *testing.T, s *storage.Store) {
	createCode(t, s, authCode("raced", t0))
	concurrently(t, 100, storage.ErrConflict, func() error {
		return s.InvalidateAuthorizationCode(t.Context(), "raced", t0.Add(time.Second))
	})
	if got, err := s.GetAuthorizationCode(t.Context(), "raced"); err != nil || got.UsedAt == nil {
		t.Errorf("GetAuthorizationCode after the race = %+v, %v; want it used", got, err)
	}
}

// ctxBG: codeRequestKinds are shared by cases, so they take no test context.
var ctxBG = context.Background()

// codeRequestKind abstracts a store of requests keyed by their code (the
// OpenID Connect requests).
type codeRequestKind struct {
	name   string
	create func(s *storage.Store, key string, data []byte, exp time.Time) error
	get    func(s *storage.Store, key string) ([]byte, time.Time, error)
	del    func(s *storage.Store, key string) error
}

var codeRequestKinds = []codeRequestKind{
	{
		name: "oidc",
		create: func(s *storage.Store, key string, data []byte, exp time.Time) error {
			return s.CreateOIDCRequest(ctxBG, &storage.OIDCRequest{CodeHash: key, RequestData: data, ExpiresAt: exp})
		},
		get: func(s *storage.Store, key string) ([]byte, time.Time, error) {
			r, err := s.GetOIDCRequest(ctxBG, key)
			if err != nil {
				return nil, time.Time{}, err
			}
			if r.CodeHash != key {
				return nil, time.Time{}, fmt.Errorf("got key %q, want %q", r.CodeHash, key)
			}
			return r.RequestData, r.ExpiresAt, nil
		},
		del: func(s *storage.Store, key string) error { return s.DeleteOIDCRequest(ctxBG, key) },
	},
}

func testCodeRequests(t *testing.T, s *storage.Store) {
	for _, k := range codeRequestKinds {
		t.Run(k.name, func(t *testing.T) {
			exp := t0.Add(time.Minute).In(zoneFar)
			for _, key := range []string{"a", "b"} {
				if err := k.create(s, k.name+key, tokenData(key), exp); err != nil {
					t.Fatalf("create %s: %v", key, err)
				}
			}
			data, gotExp, err := k.get(s, k.name+"a")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if string(data) != string(tokenData("a")) {
				t.Errorf("get: data %q, want %q", data, tokenData("a"))
			}
			sameInstant(t, "get: ExpiresAt", gotExp, exp)
			// Empty data round-trips as empty.
			if err := k.create(s, k.name+"empty", nil, exp); err != nil {
				t.Fatalf("create empty: %v", err)
			}
			if data, _, err := k.get(s, k.name+"empty"); err != nil || len(data) != 0 {
				t.Errorf("get empty = %q, %v; want empty", data, err)
			}
			wantErr(t, "create duplicate", k.create(s, k.name+"a", nil, exp), storage.ErrConflict)
			_, _, err = k.get(s, k.name+"unknown")
			wantErr(t, "get unknown", err, storage.ErrNotFound)
			wantErr(t, "delete unknown", k.del(s, k.name+"unknown"), storage.ErrNotFound)

			if err := k.del(s, k.name+"a"); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, _, err = k.get(s, k.name+"a")
			wantErr(t, "get deleted", err, storage.ErrNotFound)
			wantErr(t, "delete again", k.del(s, k.name+"a"), storage.ErrNotFound)
			if _, _, err := k.get(s, k.name+"b"); err != nil {
				t.Errorf("get of the other request after a delete: %v", err)
			}
		})
	}
}

func par(hash string, exp time.Time) *storage.PARRequest {
	return &storage.PARRequest{RequestURIHash: hash, ClientID: "client-" + hash, RequestData: tokenData(hash), ExpiresAt: exp}
}

func createPAR(t *testing.T, s *storage.Store, p *storage.PARRequest) {
	t.Helper()
	if err := s.CreatePAR(t.Context(), p); err != nil {
		t.Fatalf("CreatePAR(%q): %v", p.RequestURIHash, err)
	}
}

func testPARCreateTake(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	want := par("uri-hash", t0.Add(5*time.Minute).In(zoneWest))
	createPAR(t, s, want)
	createPAR(t, s, par("other", t0.Add(5*time.Minute)))
	wantErr(t, "CreatePAR(duplicate)", s.CreatePAR(ctx, par("uri-hash", t0.Add(time.Hour))), storage.ErrConflict)

	got, err := s.TakePAR(ctx, "uri-hash", t0)
	if err != nil {
		t.Fatalf("TakePAR: %v", err)
	}
	if diff := cmp.Diff(want, got, equateTimes); diff != "" {
		t.Errorf("TakePAR mismatch (-want +got):\n%s", diff)
	}
	_, err = s.TakePAR(ctx, "uri-hash", t0)
	wantErr(t, "TakePAR(again)", err, storage.ErrNotFound)
	_, err = s.TakePAR(ctx, "unknown", t0)
	wantErr(t, "TakePAR(unknown)", err, storage.ErrNotFound)
	if _, err := s.TakePAR(ctx, "other", t0); err != nil {
		t.Errorf("TakePAR(other) after taking the first: %v", err)
	}
	// The hash is free again once taken.
	createPAR(t, s, par("uri-hash", t0.Add(time.Minute)))
}

func testPARExpiry(t *testing.T, s *storage.Store) {
	exp := t0.Add(5 * time.Minute)
	cases := []struct {
		name string
		now  time.Time
		live bool
	}{
		{"well before", t0, true},
		{"just before", exp.Add(-time.Microsecond), true},
		{"at expiry", exp, false},
		{"just after", exp.Add(time.Microsecond), false},
		{"in another zone, before", exp.Add(-time.Second).In(zoneFar), true},
		{"in another zone, after", exp.Add(time.Second).In(zoneWest), false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hash := fmt.Sprintf("par-%d", i)
			createPAR(t, s, par(hash, exp))
			got, err := s.TakePAR(t.Context(), hash, tc.now)
			if tc.live {
				if err != nil || got.RequestURIHash != hash {
					t.Errorf("TakePAR = %+v, %v; want the request", got, err)
				}
			} else {
				wantErr(t, "TakePAR(expired)", err, storage.ErrNotFound)
			}
			// Either way the row is gone: taking it again before its
			// expiry finds nothing.
			_, err = s.TakePAR(t.Context(), hash, t0)
			wantErr(t, "TakePAR after the first take", err, storage.ErrNotFound)
		})
	}
}

func testPARTakeConcurrent(t *testing.T, s *storage.Store) {
	createPAR(t, s, par("raced", t0.Add(time.Minute)))
	concurrently(t, 50, storage.ErrNotFound, func() error {
		_, err := s.TakePAR(t.Context(), "raced", t0)
		return err
	})
}

func testAccessTokenDenylist(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	exp := t0.Add(time.Hour)
	denied := func(jti string, now time.Time) bool {
		t.Helper()
		ok, err := s.IsAccessTokenDenied(ctx, jti, now)
		if err != nil {
			t.Fatalf("IsAccessTokenDenied(%q): %v", jti, err)
		}
		return ok
	}
	if denied("jti-1", t0) {
		t.Error("a token never denied is denied")
	}
	if err := s.DenyAccessToken(ctx, "jti-1", exp.In(zoneEast), t0); err != nil {
		t.Fatalf("DenyAccessToken: %v", err)
	}
	// Idempotent, also with an earlier expiry (which must not shorten it).
	for i, e := range []time.Time{exp, exp.Add(-30 * time.Minute)} {
		if err := s.DenyAccessToken(ctx, "jti-1", e, t0.Add(time.Minute)); err != nil {
			t.Errorf("DenyAccessToken again (%d): %v", i, err)
		}
	}
	cases := []struct {
		jti  string
		now  time.Time
		want bool
	}{
		{"jti-1", t0, true},
		{"jti-1", exp.Add(-time.Microsecond), true},
		{"jti-1", exp, false},
		{"jti-1", exp.Add(time.Hour), false},
		{"jti-2", t0, false},
	}
	for _, tc := range cases {
		if got := denied(tc.jti, tc.now); got != tc.want {
			t.Errorf("IsAccessTokenDenied(%q, %s) = %v, want %v", tc.jti, tc.now, got, tc.want)
		}
	}
	// A later expiry extends the entry.
	if err := s.DenyAccessToken(ctx, "jti-1", exp.Add(time.Hour), t0); err != nil {
		t.Fatalf("DenyAccessToken with a later expiry: %v", err)
	}
	if !denied("jti-1", exp.Add(time.Minute)) {
		t.Error("a later expiry did not extend the denial")
	}
}

func browserSession(hash, user string, created time.Time) *storage.BrowserSession {
	return &storage.BrowserSession{
		IDHash:     hash,
		UserID:     user,
		CreatedAt:  created,
		AuthTime:   created.Add(-time.Second),
		LastSeenAt: created,
		ExpiresAt:  created.Add(8 * time.Hour),
		UserAgent:  "Mozilla/5.0",
		IP:         "192.0.2.7",
	}
}

func createBrowserSession(t *testing.T, s *storage.Store, b *storage.BrowserSession) {
	t.Helper()
	if err := s.CreateBrowserSession(t.Context(), b); err != nil {
		t.Fatalf("CreateBrowserSession(%q): %v", b.IDHash, err)
	}
}

func testBrowserSessionCreateGetTouch(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	want := browserSession("bs-1", "alice", t0.In(zoneEast))
	createBrowserSession(t, s, want)
	got, err := s.GetBrowserSession(ctx, "bs-1", t0)
	if err != nil {
		t.Fatalf("GetBrowserSession: %v", err)
	}
	if diff := cmp.Diff(want, got, equateTimes); diff != "" {
		t.Errorf("GetBrowserSession mismatch (-want +got):\n%s", diff)
	}
	wantErr(t, "CreateBrowserSession(duplicate)", s.CreateBrowserSession(ctx, browserSession("bs-1", "bob", t0)), storage.ErrConflict)
	_, err = s.GetBrowserSession(ctx, "unknown", t0)
	wantErr(t, "GetBrowserSession(unknown)", err, storage.ErrNotFound)

	// Defaults: CreatedAt from the clock, LastSeenAt and AuthTime from it.
	fixedClock(s, t0.Add(time.Minute))
	createBrowserSession(t, s, &storage.BrowserSession{IDHash: "bs-dflt", UserID: "alice", ExpiresAt: t0.Add(time.Hour)})
	if got, err := s.GetBrowserSession(ctx, "bs-dflt", t0.Add(time.Minute)); err != nil {
		t.Errorf("GetBrowserSession(bs-dflt): %v", err)
	} else {
		for what, v := range map[string]time.Time{"CreatedAt": got.CreatedAt, "LastSeenAt": got.LastSeenAt, "AuthTime": got.AuthTime} {
			sameInstant(t, "defaulted "+what, v, t0.Add(time.Minute))
		}
	}

	seen := t0.Add(time.Hour).In(zoneWest)
	if err := s.TouchBrowserSession(ctx, "bs-1", seen); err != nil {
		t.Fatalf("TouchBrowserSession: %v", err)
	}
	got, err = s.GetBrowserSession(ctx, "bs-1", seen)
	if err != nil {
		t.Fatalf("GetBrowserSession after touch: %v", err)
	}
	sameInstant(t, "LastSeenAt after touch", got.LastSeenAt, seen)
	sameInstant(t, "ExpiresAt after touch (unchanged)", got.ExpiresAt, want.ExpiresAt)
	wantErr(t, "TouchBrowserSession(unknown)", s.TouchBrowserSession(ctx, "unknown", seen), storage.ErrNotFound)
}

// testBrowserSessionEnd: expiry and revocation each end a session, for
// Get and Touch alike; revocation is idempotent.
func testBrowserSessionEnd(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	exp := t0.Add(8 * time.Hour)
	cases := []struct {
		name string
		now  time.Time
		end  func(hash string) error // nil: nothing ends it
		live bool
	}{
		{name: "live", now: t0.Add(time.Hour), live: true},
		{name: "just before expiry", now: exp.Add(-time.Microsecond), live: true},
		{name: "at expiry", now: exp},
		{name: "after expiry", now: exp.Add(time.Hour)},
		{name: "revoked", now: t0.Add(time.Hour), end: func(h string) error { return s.RevokeBrowserSession(ctx, h, t0.Add(time.Minute)) }},
		{name: "revoked twice", now: t0.Add(time.Hour), end: func(h string) error {
			if err := s.RevokeBrowserSession(ctx, h, t0.Add(time.Minute)); err != nil {
				return err
			}
			return s.RevokeBrowserSession(ctx, h, t0.Add(2*time.Minute))
		}},
		{name: "revoked after expiry", now: exp.Add(time.Hour), end: func(h string) error { return s.RevokeBrowserSession(ctx, h, exp.Add(time.Minute)) }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hash := fmt.Sprintf("end-%d", i)
			createBrowserSession(t, s, browserSession(hash, "user-"+hash, t0))
			if tc.end != nil {
				if err := tc.end(hash); err != nil {
					t.Fatalf("end: %v", err)
				}
			}
			_, getErr := s.GetBrowserSession(ctx, hash, tc.now)
			touchErr := s.TouchBrowserSession(ctx, hash, tc.now)
			if tc.live {
				if getErr != nil || touchErr != nil {
					t.Errorf("Get, Touch = %v, %v; want the session live", getErr, touchErr)
				}
				return
			}
			wantErr(t, "GetBrowserSession", getErr, storage.ErrNotFound)
			wantErr(t, "TouchBrowserSession", touchErr, storage.ErrNotFound)
		})
	}
	wantErr(t, "RevokeBrowserSession(unknown)", s.RevokeBrowserSession(ctx, "unknown", t0), storage.ErrNotFound)

	t.Run("revoke all of a user", func(t *testing.T) {
		for _, h := range []string{"carol-1", "carol-2", "carol-revoked"} {
			createBrowserSession(t, s, browserSession(h, "carol", t0))
		}
		createBrowserSession(t, s, browserSession("dave-1", "dave", t0))
		if err := s.RevokeBrowserSession(ctx, "carol-revoked", t0); err != nil {
			t.Fatal(err)
		}
		n, err := s.RevokeUserBrowserSessions(ctx, "carol", t0.Add(time.Minute))
		if err != nil || n != 2 {
			t.Errorf("RevokeUserBrowserSessions = %d, %v; want 2", n, err)
		}
		for _, h := range []string{"carol-1", "carol-2", "carol-revoked"} {
			_, err := s.GetBrowserSession(ctx, h, t0.Add(time.Hour))
			wantErr(t, "GetBrowserSession("+h+")", err, storage.ErrNotFound)
		}
		if _, err := s.GetBrowserSession(ctx, "dave-1", t0.Add(time.Hour)); err != nil {
			t.Errorf("another user's session was revoked: %v", err)
		}
		if n, err := s.RevokeUserBrowserSessions(ctx, "carol", t0.Add(time.Hour)); err != nil || n != 0 {
			t.Errorf("RevokeUserBrowserSessions again = %d, %v; want 0", n, err)
		}
	})
}

// testPruneAuthorizationTables: pruning deletes the rows of each new table
// that expired at or before now, and only those; a used code stays until it
// expires.
func testPruneAuthorizationTables(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	now := t0.Add(24 * time.Hour)
	past, future := now.Add(-time.Second), now.Add(time.Second)
	type table struct {
		name   string
		create func(key string, exp time.Time) error
		// exists checks for the row at a time before any expiry, so that
		// only pruning (not expiry) can make it disappear.
		exists func(key string) (bool, error)
	}
	notFound := func(err error) (bool, error) {
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	tables := []table{
		{
			name: "authorization_codes",
			create: func(key string, exp time.Time) error {
				c := authCode(key, t0)
				c.ExpiresAt = exp
				if err := s.CreateAuthorizationCode(ctx, c); err != nil {
					return err
				}
				return s.InvalidateAuthorizationCode(ctx, key, t0) // used codes stay until expiry
			},
			exists: func(key string) (bool, error) { _, err := s.GetAuthorizationCode(ctx, key); return notFound(err) },
		},
		{
			name: "unused authorization_codes",
			create: func(key string, exp time.Time) error {
				c := authCode(key, t0)
				c.ExpiresAt = exp
				return s.CreateAuthorizationCode(ctx, c)
			},
			exists: func(key string) (bool, error) { _, err := s.GetAuthorizationCode(ctx, key); return notFound(err) },
		},
		{
			// No longer written (a code is its own PKCE binding); rows
			// left from earlier versions still go.
			name: "pkce_requests",
			create: func(key string, exp time.Time) error {
				_, err := s.SQLDB().ExecContext(ctx, rebind(s, "INSERT INTO pkce_requests (signature, request_data, expires_at) VALUES (?, ?, ?)"), key, []byte("{}"), exp.UTC())
				return err
			},
			exists: func(key string) (bool, error) {
				var n int
				err := s.SQLDB().QueryRowContext(ctx, rebind(s, "SELECT COUNT(*) FROM pkce_requests WHERE signature = ?"), key).Scan(&n)
				return n > 0, err
			},
		},
		{
			name:   "oidc_requests",
			create: func(key string, exp time.Time) error { return codeRequestKinds[0].create(s, key, nil, exp) },
			exists: func(key string) (bool, error) { _, _, err := codeRequestKinds[0].get(s, key); return notFound(err) },
		},
		{
			name:   "par_requests",
			create: func(key string, exp time.Time) error { return s.CreatePAR(ctx, par(key, exp)) },
			// TakePAR consumes the row; exists is called once per row.
			exists: func(key string) (bool, error) { _, err := s.TakePAR(ctx, key, t0); return notFound(err) },
		},
		{
			name:   "revoked_access_tokens",
			create: func(key string, exp time.Time) error { return s.DenyAccessToken(ctx, key, exp, t0) },
			exists: func(key string) (bool, error) { return s.IsAccessTokenDenied(ctx, key, t0) },
		},
		{
			name: "browser_sessions",
			create: func(key string, exp time.Time) error {
				b := browserSession(key, "u", t0)
				b.ExpiresAt = exp
				return s.CreateBrowserSession(ctx, b)
			},
			exists: func(key string) (bool, error) { _, err := s.GetBrowserSession(ctx, key, t0); return notFound(err) },
		},
		{
			name: "revoked browser_sessions",
			create: func(key string, exp time.Time) error {
				b := browserSession(key, "u", t0)
				b.ExpiresAt = exp
				if err := s.CreateBrowserSession(ctx, b); err != nil {
					return err
				}
				return s.RevokeBrowserSession(ctx, key, t0)
			},
			// A revoked session is not found by Get: look at the row.
			exists: func(key string) (bool, error) {
				var n int
				err := s.SQLDB().QueryRowContext(ctx, rebind(s, "SELECT COUNT(*) FROM browser_sessions WHERE id_hash = ?"), key).Scan(&n)
				return n > 0, err
			},
		},
	}
	rows := []struct {
		suffix string
		exp    time.Time
		stays  bool
	}{
		{"long-gone", t0.Add(time.Minute), false},
		{"just-expired", past, false},
		{"at-now", now, false},
		{"live", future, true},
	}
	var wantPruned int64
	for _, tb := range tables {
		for _, r := range rows {
			if err := tb.create(tb.name+"/"+r.suffix, r.exp); err != nil {
				t.Fatalf("%s: create %s: %v", tb.name, r.suffix, err)
			}
			if !r.stays {
				wantPruned++
			}
		}
	}
	n, err := s.PruneExpired(ctx, now, storage.PruneOptions{})
	if err != nil {
		t.Fatalf("PruneExpired: %v", err)
	}
	if n != wantPruned {
		t.Errorf("PruneExpired deleted %d rows, want %d", n, wantPruned)
	}
	for _, tb := range tables {
		for _, r := range rows {
			got, err := tb.exists(tb.name + "/" + r.suffix)
			if err != nil {
				t.Errorf("%s: look up %s: %v", tb.name, r.suffix, err)
			} else if got != r.stays {
				t.Errorf("%s: row %s (expiring %s) exists after pruning at %s: %v, want %v", tb.name, r.suffix, r.exp, now, got, r.stays)
			}
		}
	}
}
