package main

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// parallelRequests is how many requests race for one token or code.
const parallelRequests = 100

// raceTokenEndpoint sends form to /oauth2/token parallelRequests times at
// once over one shared transport and fails the test on any transport error
// or 5xx.
func raceTokenEndpoint(t *testing.T, f *signInFixture, form url.Values) ([]tokenAnswer, map[string]int) {
	t.Helper()
	hc := protoClient()
	defer hc.CloseIdleConnections()
	type result struct {
		a   tokenAnswer
		err error
	}
	res := parallel(parallelRequests, func(int) result {
		a, err := tokenRequest(hc, f.ts.PublicURL, f.client, form)
		return result{a, err}
	})
	answers := make([]tokenAnswer, len(res))
	errs := make([]error, len(res))
	for i, r := range res {
		answers[i], errs[i] = r.a, r.err
	}
	counts, err := tally(answers, errs)
	if err != nil {
		t.Fatalf("transport errors: %v", err)
	}
	for _, a := range answers {
		if a.Status >= 500 {
			t.Fatalf("a racing request answered %s (counts %v)", a, counts)
		}
	}
	return answers, counts
}

// TestSignInConcurrentRefresh: 100 parallel refreshes of one refresh token.
// Within the reuse window every one gets the same successor and the family
// stays intact; with the window at 0s one wins and the reuse by the others
// is theft, which revokes the family. Never a 5xx (Hydra #3604).
func TestSignInConcurrentRefresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		t.Run("reuse window 10s", func(t *testing.T) {
			f := newSignInFixture(t, b, nil, nil) // the default window is 10s
			g := f.signIn(t, newAgent(t, f.ts.PublicURL, testUsername, testPassword))
			answers, counts := raceTokenEndpoint(t, f, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.Refresh}})
			if counts["200"] != parallelRequests {
				t.Fatalf("answers %v, want %d × 200", counts, parallelRequests)
			}
			successor := answers[0].RefreshToken
			accessTokens := map[string]bool{}
			for _, a := range answers {
				if a.RefreshToken != successor {
					t.Fatalf("two different successors of one refresh token: %.12s… and %.12s…", successor, a.RefreshToken)
				}
				accessTokens[a.AccessToken] = true
			}
			if successor == "" || successor == g.Refresh {
				t.Fatalf("successor %q of %q", successor, g.Refresh)
			}
			if len(accessTokens) != parallelRequests {
				t.Errorf("%d distinct access tokens for %d answers, want a fresh one each", len(accessTokens), parallelRequests)
			}
			for at := range accessTokens {
				if sid := jwtPayload(t, at)["sid"]; sid != g.SID {
					t.Fatalf("access token of a replayed refresh has sid %v, want %s", sid, g.SID)
				}
			}
			// Exactly one token of the family works: the successor.
			f.wantInactive(t, f.client, "the rotated refresh token", g.Refresh)
			f.wantActive(t, f.client, "the successor", successor)
			if !slices.Contains(f.sessionIDs(t), g.SID) {
				t.Fatal("the grant session was revoked by a refresh within the window")
			}
			next := f.mustRefresh(t, successor)
			if next.RefreshToken == successor {
				t.Fatal("the successor did not rotate")
			}
			f.wantInactive(t, f.client, "the rotated successor", successor)
			f.wantActive(t, f.client, "the successor's successor", next.RefreshToken)
			f.wantActive(t, f.client, "the newest access token", next.AccessToken)
		})

		t.Run("reuse window 0s", func(t *testing.T) {
			f := newSignInFixture(t, b, map[string]string{"OAUTHD_REFRESH_REUSE_WINDOW": "0s"}, nil)
			g := f.signIn(t, newAgent(t, f.ts.PublicURL, testUsername, testPassword))
			answers, counts := raceTokenEndpoint(t, f, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.Refresh}})
			if counts["200"] != 1 || counts["400 invalid_grant"] != parallelRequests-1 {
				t.Fatalf("answers %v, want exactly one 200 and %d × 400 invalid_grant", counts, parallelRequests-1)
			}
			var winner tokenAnswer
			for _, a := range answers {
				if a.Status == http.StatusOK {
					winner = a
				}
			}
			// With no window every second presentation is theft (contract):
			// the losers revoked the family, the winner's tokens included.
			f.wantGrantRevoked(t, grant{Access: winner.AccessToken, Refresh: winner.RefreshToken, SID: g.SID})
			wantOAuthError(t, "the original refresh token", f.refresh(t, g.Refresh), http.StatusBadRequest, "invalid_grant")
		})
	})
}

// TestSignInConcurrentCodeExchange: 100 parallel exchanges of one code give
// exactly one 200 (fosite #778 is the bug this guards against). A later
// replay of the same code revokes what the winner got.
func TestSignInConcurrentCodeExchange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		for round := 0; round < 3; round++ {
			verifier := oauth2.GenerateVerifier()
			code := f.authorize(t, a, verifier)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {f.redirect}, "code_verifier": {verifier}}
			answers, counts := raceTokenEndpoint(t, f, form)
			if counts["200"] != 1 || counts["400 invalid_grant"] != parallelRequests-1 {
				t.Fatalf("round %d: answers %v, want exactly one 200 and %d × 400 invalid_grant", round, counts, parallelRequests-1)
			}
			var winner tokenAnswer
			for _, ans := range answers {
				if ans.Status == http.StatusOK {
					winner = ans
				}
			}
			if winner.AccessToken == "" || winner.RefreshToken == "" || winner.IDToken == "" {
				t.Fatalf("round %d: the winner's answer lacks tokens: %s", round, winner)
			}
			// Whatever the losers did, one more exchange of the real code is
			// reuse: invalid_grant, and the winner's grant is revoked.
			wantOAuthError(t, "replay of the code", f.token(t, form), http.StatusBadRequest, "invalid_grant")
			sid, _ := jwtPayload(t, winner.AccessToken)["sid"].(string)
			f.wantGrantRevoked(t, grant{Access: winner.AccessToken, Refresh: winner.RefreshToken, SID: sid})
		}
	})
}
