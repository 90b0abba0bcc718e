package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd/storage"
)

// testAccessTokenStatus: the two questions introspection and userinfo ask
// of every access token (jti denied? grant session live?), alone and with
// many callers at once, each of whom must get the answer to its own
// question.
func testAccessTokenStatus(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	now := t0.Add(time.Minute) // within every session's idle time
	createSession(t, s, session("st-live", "u", t0))
	revoked := session("st-revoked", "u", t0)
	createSession(t, s, revoked)
	if err := s.RevokeGrantSession(ctx, "st-revoked", storage.ReasonAdmin, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	idle := session("st-idle", "u", t0)
	idle.IdleExpiresAt = now // an expiry equal to now has passed
	createSession(t, s, idle)
	absolute := session("st-absolute", "u", t0)
	absolute.AbsoluteExpiresAt = now.Add(-time.Second)
	createSession(t, s, absolute)
	if err := s.DenyAccessToken(ctx, "jti-denied", now.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DenyAccessToken(ctx, "jti-denial-over", now, t0); err != nil { // the token has expired anyway
		t.Fatal(err)
	}

	cases := []struct {
		jti, sid             string
		wantDenied, wantLive bool
	}{
		{"jti-ok", "st-live", false, true},
		{"jti-denied", "st-live", true, true},
		{"jti-denial-over", "st-live", false, true},
		{"jti-ok", "st-revoked", false, false},
		{"jti-ok", "st-idle", false, false},
		{"jti-ok", "st-absolute", false, false},
		{"jti-ok", "st-unknown", false, false},
		{"jti-denied", "st-revoked", true, false},
		{"jti-ok", "", false, true}, // a client_credentials token has no session
		{"jti-denied", "", true, true},
	}
	for _, tc := range cases {
		denied, live, err := s.AccessTokenStatus(ctx, tc.jti, tc.sid, now)
		if err != nil || denied != tc.wantDenied || live != tc.wantLive {
			t.Errorf("AccessTokenStatus(%q, %q) = denied %v, live %v, %v; want %v, %v", tc.jti, tc.sid, denied, live, err, tc.wantDenied, tc.wantLive)
		}
	}

	// Many at once (PostgreSQL answers concurrent callers in shared
	// queries): everyone gets the answer to their own question.
	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, rounds*len(cases))
	for r := range rounds {
		for _, tc := range cases {
			wg.Go(func() {
				denied, live, err := s.AccessTokenStatus(ctx, tc.jti, tc.sid, now)
				if err != nil || denied != tc.wantDenied || live != tc.wantLive {
					errs <- fmt.Errorf("round %d: AccessTokenStatus(%q, %q) = denied %v, live %v, %v; want %v, %v", r, tc.jti, tc.sid, denied, live, err, tc.wantDenied, tc.wantLive)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The time is each caller's own: the same session, asked about at two
	// times at once, is live at one and expired at the other.
	var liveEarly, liveLate bool
	wg.Go(func() { _, liveEarly, _ = s.AccessTokenStatus(ctx, "jti-ok", "st-idle", now.Add(-time.Second)) })
	wg.Go(func() { _, liveLate, _ = s.AccessTokenStatus(ctx, "jti-ok", "st-idle", now.Add(time.Second)) })
	wg.Wait()
	if !liveEarly || liveLate {
		t.Errorf("st-idle live just before its idle expiry: %v (want true), just after: %v (want false)", liveEarly, liveLate)
	}
}

// testAuthorizationCodeGetConcurrent: many readers of codes at once
// (PostgreSQL answers concurrent readers in shared queries): each gets its
// own code, used or not, or ErrNotFound.
func testAuthorizationCodeGetConcurrent(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	const n = 40
	for i := range n {
		createCode(t, s, authCode(fmt.Sprintf("gc-%02d", i), t0))
		if i%3 == 0 {
			if err := s.InvalidateAuthorizationCode(ctx, fmt.Sprintf("gc-%02d", i), t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for range 2 {
		for i := range 2 * n { // the second half is unknown
			wg.Go(func() {
				sig := fmt.Sprintf("gc-%02d", i)
				c, err := s.GetAuthorizationCode(ctx, sig)
				switch {
				case i >= n:
					if !errors.Is(err, storage.ErrNotFound) {
						errs <- fmt.Errorf("GetAuthorizationCode(%s) = %+v, %v; want ErrNotFound", sig, c, err)
					}
				case err != nil:
					errs <- fmt.Errorf("GetAuthorizationCode(%s): %v", sig, err)
				case c.Signature != sig || c.SessionID != "sid-"+sig || c.ClientID != "client-"+sig || string(c.RequestData) != string(tokenData(sig)):
					errs <- fmt.Errorf("GetAuthorizationCode(%s) = %+v: another code's row", sig, c)
				case (c.UsedAt != nil) != (i%3 == 0):
					errs <- fmt.Errorf("GetAuthorizationCode(%s): used %v, want %v", sig, c.UsedAt != nil, i%3 == 0)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
