package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oauthd/oauthd/storage"
)

// Conformance cases for RedeemAuthorizationCode: a code exchange's writes
// (code used, grant session started, first refresh token) all or nothing.

// redemption redeems code sig into session sid (of user u, the client of
// authCode(sig)), with a first refresh token sid+"/0" when withToken.
func redemption(sig, sid string, now time.Time, withToken bool) storage.Redemption {
	g := session(sid, "u", now)
	g.ClientID = "client-" + sig
	r := storage.Redemption{CodeSignature: sig, Now: now, Session: g}
	if withToken {
		r.FirstToken = &storage.RefreshToken{Signature: sid + "/0", RequestData: tokenData(sid), ExpiresAt: now.Add(24 * time.Hour)}
	}
	return r
}

// sessionExists reports whether grant session id is stored.
func sessionExists(t *testing.T, s *storage.Store, id string) bool {
	t.Helper()
	_, err := s.GetGrantSession(t.Context(), id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetGrantSession(%q): %v", id, err)
	}
	return err == nil
}

func testAuthorizationCodeRedeem(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	now := t0.Add(10 * time.Second)

	t.Run("unused code with a refresh token", func(t *testing.T) {
		createCode(t, s, authCode("redeem-1", t0))
		r := redemption("redeem-1", "sid-redeem-1", now, true)
		if err := s.RedeemAuthorizationCode(ctx, r); err != nil {
			t.Fatalf("RedeemAuthorizationCode: %v", err)
		}
		code, err := s.GetAuthorizationCode(ctx, "redeem-1")
		if err != nil || code.UsedAt == nil {
			t.Fatalf("code after redemption: %+v, %v; want used", code, err)
		}
		sameInstant(t, "UsedAt", *code.UsedAt, now)
		want := *r.Session
		want.CreatedAt, want.LastUsedAt = now, now
		if diff := cmp.Diff(&want, getSession(t, s, "sid-redeem-1"), equateTimes); diff != "" {
			t.Errorf("grant session (-want +got):\n%s", diff)
		}
		wantTok := []storage.RefreshToken{{
			Signature: "sid-redeem-1/0", SessionID: "sid-redeem-1", ClientID: "client-redeem-1",
			RequestData: tokenData("sid-redeem-1"), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), State: storage.TokenActive,
		}}
		if diff := cmp.Diff(wantTok, tokensOf(t, s, "sid-redeem-1"), equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("refresh tokens (-want +got):\n%s", diff)
		}

		// A second redemption, even into another session, writes nothing.
		again := redemption("redeem-1", "sid-redeem-1b", now.Add(time.Second), true)
		wantErr(t, "second RedeemAuthorizationCode", s.RedeemAuthorizationCode(ctx, again), storage.ErrConflict)
		if sessionExists(t, s, "sid-redeem-1b") {
			t.Error("a second redemption started a grant session")
		}
		if code, _ := s.GetAuthorizationCode(ctx, "redeem-1"); code == nil || code.UsedAt == nil || !code.UsedAt.Equal(now) {
			t.Errorf("a second redemption changed the code: %+v", code)
		}
	})

	t.Run("without a refresh token", func(t *testing.T) {
		createCode(t, s, authCode("redeem-2", t0))
		if err := s.RedeemAuthorizationCode(ctx, redemption("redeem-2", "sid-redeem-2", now, false)); err != nil {
			t.Fatalf("RedeemAuthorizationCode: %v", err)
		}
		if !sessionExists(t, s, "sid-redeem-2") {
			t.Error("no grant session")
		}
		if toks := tokensOf(t, s, "sid-redeem-2"); len(toks) != 0 {
			t.Errorf("tokens %+v, want none", toks)
		}
	})

	t.Run("unknown code", func(t *testing.T) {
		wantErr(t, "RedeemAuthorizationCode(unknown)", s.RedeemAuthorizationCode(ctx, redemption("redeem-unknown", "sid-redeem-u", now, true)), storage.ErrNotFound)
		if sessionExists(t, s, "sid-redeem-u") {
			t.Error("an unknown code started a grant session")
		}
	})

	t.Run("taken session id: nothing written, not a used code", func(t *testing.T) {
		createSession(t, s, session("sid-taken", "u", t0))
		createCode(t, s, authCode("redeem-3", t0))
		err := s.RedeemAuthorizationCode(ctx, redemption("redeem-3", "sid-taken", now, true))
		if err == nil || errors.Is(err, storage.ErrConflict) {
			t.Errorf("RedeemAuthorizationCode into a taken session id: %v, want an error other than ErrConflict", err)
		}
		if code, _ := s.GetAuthorizationCode(ctx, "redeem-3"); code == nil || code.UsedAt != nil {
			t.Errorf("the failed redemption used the code: %+v", code)
		}
		if toks := tokensOf(t, s, "sid-taken"); len(toks) != 0 {
			t.Errorf("the failed redemption stored tokens %+v", toks)
		}
	})

	t.Run("token of another client", func(t *testing.T) {
		createCode(t, s, authCode("redeem-4", t0))
		r := redemption("redeem-4", "sid-redeem-4", now, true)
		r.FirstToken.ClientID = "someone-else"
		if err := s.RedeemAuthorizationCode(ctx, r); err == nil || errors.Is(err, storage.ErrConflict) {
			t.Errorf("RedeemAuthorizationCode with a token of another client: %v, want an error other than ErrConflict (a used code)", err)
		}
		if code, _ := s.GetAuthorizationCode(ctx, "redeem-4"); code == nil || code.UsedAt != nil {
			t.Errorf("the refused redemption used the code: %+v", code)
		}
		if sessionExists(t, s, "sid-redeem-4") {
			t.Error("the refused redemption started a grant session")
		}
	})
}

// testAuthorizationCodeRedeemConcurrent: of many concurrent redemptions of
// one code, each into its own session, exactly one succeeds and only its
// session exists.
func testAuthorizationCodeRedeemConcurrent(t *testing.T, s *storage.Store) {
	const n = 50
	createCode(t, s, authCode("redeem-race", t0))
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.RedeemAuthorizationCode(t.Context(), redemption("redeem-race", fmt.Sprintf("sid-race-%02d", i), t0.Add(time.Second), true))
		})
	}
	close(start)
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Errorf("redemptions %d and %d both succeeded", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("redemption %d: %v, want success or ErrConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no redemption succeeded")
	}
	for i := range n {
		sid := fmt.Sprintf("sid-race-%02d", i)
		if got := sessionExists(t, s, sid); got != (i == won) {
			t.Errorf("session %s exists: %v, want %v", sid, got, i == won)
		}
	}
	if act := activeTokens(t, s, fmt.Sprintf("sid-race-%02d", won)); len(act) != 1 {
		t.Errorf("winner's active tokens %v, want one", act)
	}
}

// testAuthorizationCodeRedeemMixed: redemptions of every outcome at once,
// so the database's grouped writes carry them side by side; each must come
// out as it does alone. A redemption into a taken session id fails its
// whole group's statement, and the others must still succeed.
func testAuthorizationCodeRedeemMixed(t *testing.T, s *storage.Store) {
	type attempt struct {
		r    storage.Redemption
		want error // nil: success; errTaken: an error other than ErrConflict
	}
	errTaken := errors.New("taken")
	now := t0.Add(10 * time.Second)
	for round := range 3 {
		var attempts []attempt
		for i := range 16 {
			sig := fmt.Sprintf("mixed-%d-%02d", round, i)
			createCode(t, s, authCode(sig, t0))
			attempts = append(attempts, attempt{r: redemption(sig, "sid-"+sig, now, i%2 == 0)})
		}
		for i := range 2 {
			sig := fmt.Sprintf("mixed-%d-unknown-%d", round, i)
			attempts = append(attempts, attempt{r: redemption(sig, "sid-"+sig, now, true), want: storage.ErrNotFound})
		}
		used := fmt.Sprintf("mixed-%d-used", round)
		createCode(t, s, authCode(used, t0))
		if err := s.RedeemAuthorizationCode(t.Context(), redemption(used, "sid-"+used, now, true)); err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, attempt{r: redemption(used, "sid-"+used+"-again", now, true), want: storage.ErrConflict})
		taken := fmt.Sprintf("mixed-%d-taken", round)
		createCode(t, s, authCode(taken, t0))
		createSession(t, s, session("sid-"+taken, "u", t0))
		attempts = append(attempts, attempt{r: redemption(taken, "sid-"+taken, now, true), want: errTaken})

		errs := make([]error, len(attempts))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, a := range attempts {
			wg.Go(func() {
				<-start
				errs[i] = s.RedeemAuthorizationCode(context.WithoutCancel(t.Context()), a.r)
			})
		}
		close(start)
		wg.Wait()
		for i, a := range attempts {
			sig, sid, err := a.r.CodeSignature, a.r.Session.ID, errs[i]
			switch a.want {
			case nil:
				if err != nil {
					t.Errorf("round %d: redeem %s: %v, want success", round, sig, err)
					continue
				}
				if !sessionExists(t, s, sid) {
					t.Errorf("round %d: redeem %s: no grant session %s", round, sig, sid)
				}
				wantTokens := 0
				if a.r.FirstToken != nil {
					wantTokens = 1
				}
				if act := activeTokens(t, s, sid); len(act) != wantTokens {
					t.Errorf("round %d: redeem %s: active tokens %v, want %d", round, sig, act, wantTokens)
				}
				if code, _ := s.GetAuthorizationCode(t.Context(), sig); code == nil || code.UsedAt == nil {
					t.Errorf("round %d: redeem %s: code afterwards %+v, want used", round, sig, code)
				}
			case errTaken:
				if err == nil || errors.Is(err, storage.ErrConflict) {
					t.Errorf("round %d: redeem %s into a taken session id: %v, want an error other than ErrConflict", round, sig, err)
				}
				if code, _ := s.GetAuthorizationCode(t.Context(), sig); code == nil || code.UsedAt != nil {
					t.Errorf("round %d: the failed redemption used the code: %+v", round, code)
				}
				if toks := tokensOf(t, s, sid); len(toks) != 0 {
					t.Errorf("round %d: the failed redemption stored tokens %+v", round, toks)
				}
			default:
				wantErr(t, "redeem "+sig, err, a.want)
				if sessionExists(t, s, sid) {
					t.Errorf("round %d: redeem %s (%v) started grant session %s", round, sig, a.want, sid)
				}
			}
		}
	}
}
