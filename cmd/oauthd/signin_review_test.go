package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// End-to-end tests of the security review fixes (commit "Review fixes"):
// PAR-only clients and request objects, pushed requests ignoring the
// front channel, max_age, the code race, logout confirmation, PAR query
// strings, authorization request bodies, resource indicators at the
// authorization endpoint, and frame/cache headers on browser responses.

const reviewState = "state-0123456789"

// reviewAs returns a copy of the fixture acting as client c (its
// authURL, exchange and token use c), with x/oauth2 set up for scopes.
func (f *signInFixture) reviewAs(c registeredClient, scopes ...string) *signInFixture {
	cf := *f
	cfg := *f.oauth
	cfg.ClientID, cfg.ClientSecret = c.ID, c.Secret
	if len(scopes) > 0 {
		cfg.Scopes = scopes
	}
	cf.oauth, cf.client = &cfg, c
	return &cf
}

// reviewPush pushes params to /oauth2/par as c and decodes the answer.
func (f *signInFixture) reviewPush(t *testing.T, c registeredClient, path string, params url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	status, hdr, body, err := postClientForm(http.DefaultClient, f.ts.PublicURL, path, c, params)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("PAR answer %d is not JSON: %s", status, body)
	}
	return status, hdr, m
}

// reviewPushParams returns the parameters of a valid authorization request
// of f's client (f.authURL with params) and its PKCE verifier.
func (f *signInFixture) reviewPushParams(params url.Values) (url.Values, string) {
	u, verifier := f.authURL(params)
	pu, _ := url.Parse(u)
	return pu.Query(), verifier
}

// reviewMustPush pushes a valid request and returns its request_uri.
func (f *signInFixture) reviewMustPush(t *testing.T, params url.Values) string {
	t.Helper()
	status, _, m := f.reviewPush(t, f.client, "/oauth2/par", params)
	ru, _ := m["request_uri"].(string)
	if status != http.StatusCreated || !strings.HasPrefix(ru, "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("PAR: %d %v, want 201 with a request_uri", status, m)
	}
	return ru
}

// sendBody makes one request with the agent's cookies and a raw body of
// the given content type, without following anything.
func (a *agent) sendBody(method, rawURL, contentType string, body []byte) page {
	a.t.Helper()
	req, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// wantLoginRedirect checks that p is the authorization endpoint's 303 to
// the login page (the request was accepted).
func wantLoginRedirect(t *testing.T, what string, p page) {
	t.Helper()
	if loc := p.location(); p.Status != http.StatusSeeOther || loc == nil || loc.Path != "/login" {
		t.Errorf("%s: %d to %v, want 303 to /login (%.200s)", what, p.Status, loc, p.Body)
	}
}

// audClaim returns a token's aud claim as a list (a JWT may carry a single
// audience as a string).
func audClaim(t *testing.T, claims map[string]any) []string {
	t.Helper()
	switch v := claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				t.Fatalf("aud %v has a non-string member", v)
			}
			out = append(out, s)
		}
		return out
	default:
		t.Fatalf("aud claim %#v (%T)", claims["aud"], claims["aud"])
		return nil
	}
}

// 1. A client that must push cannot be driven with a made-up request_uri
// (which used to count as "pushed" and skip the PAR requirement), and
// request objects are refused outright.
func TestSignInReviewPAROnlyClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		rc := f.ts.createClient(map[string]any{"client_name": "PAR Only", "redirect_uris": []string{testRedirect},
			"grant_types": []string{"authorization_code"}, "scope": "openid api:read", "require_pushed_authorization_requests": true})
		status, raw := f.ts.adminDo(http.MethodGet, "/admin/clients/"+url.PathEscape(rc.ID), nil)
		var meta map[string]any
		_ = json.Unmarshal(raw, &meta)
		if status != http.StatusOK || meta["require_pushed_authorization_requests"] != true {
			t.Fatalf("the PAR-only client was not stored as such: %d %s", status, raw)
		}
		rf := f.reviewAs(rc, "openid", "api:read")

		// Control: the plain front-channel request is refused (redirected,
		// the redirect URI being registered).
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		u, _ := rf.authURL(nil)
		rf.wantErrorRedirect(t, "plain request of a PAR-only client", a.send(http.MethodGet, u, nil, nil), f.redirect, reviewState, "invalid_request")

		// Without openid fosite ignores request_uri altogether; with it,
		// fosite would treat it as a request-object URI.
		for _, scope := range []string{"api:read", "openid", "openid api:read"} {
			for _, ru := range []string{"x", "https://evil.example/request.jwt", "urn:example:not-pushed", "urn:ietf:params:oauth:request_uri:made-up"} {
				t.Run("request_uri="+ru+" scope="+scope, func(t *testing.T) {
					a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
					u, _ := rf.authURL(url.Values{"scope": {scope}, "request_uri": {ru}})
					wantErrorPage(t, "GET", a.send(http.MethodGet, u, nil, nil), http.StatusBadRequest, "evil.example")
					pu, _ := url.Parse(u)
					wantErrorPage(t, "POST", a.send(http.MethodPost, f.ts.PublicURL+"/oauth2/authorize", pu.Query(), nil), http.StatusBadRequest, "evil.example")
				})
			}
		}

		// request=... is refused for any client, whatever the scope.
		for _, c := range []*signInFixture{rf, f} {
			for _, scope := range []string{"api:read", "openid"} {
				for _, obj := range []string{"anything", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCBvZmZsaW5lX2FjY2VzcyJ9."} {
					name := "request object"
					if c == rf {
						name += " of the PAR-only client"
					}
					t.Run(name+" scope="+scope+" "+obj[:8], func(t *testing.T) {
						a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
						u, _ := c.authURL(url.Values{"scope": {scope}, "request": {obj}})
						wantErrorPage(t, "GET", a.send(http.MethodGet, u, nil, nil), http.StatusBadRequest, "")
						pu, _ := url.Parse(u)
						wantErrorPage(t, "POST", a.send(http.MethodPost, f.ts.PublicURL+"/oauth2/authorize", pu.Query(), nil), http.StatusBadRequest, "")
					})
				}
			}
		}

		// The real thing still works for the PAR-only client.
		params, verifier := rf.reviewPushParams(url.Values{"scope": {"openid api:read"}})
		status, _, m := rf.reviewPush(t, rc, "/oauth2/par", params)
		ru, _ := m["request_uri"].(string)
		if status != http.StatusCreated || ru == "" {
			t.Fatalf("PAR of the PAR-only client: %d %v", status, m)
		}
		back, resp, body := newAgent(t, f.ts.PublicURL, testUsername, testPassword).Do(
			f.ts.PublicURL + "/oauth2/authorize?" + url.Values{"client_id": {rc.ID}, "request_uri": {ru}}.Encode())
		if back == nil {
			t.Fatalf("pushed request of the PAR-only client ended on a page %d: %.300s", resp.StatusCode, body)
		}
		q := rf.callback(t, back, f.redirect, reviewState)
		if ans := rf.exchange(t, q.Get("code"), verifier); ans.Status != http.StatusOK || ans.AccessToken == "" {
			t.Fatalf("exchange of the PAR-only client's code: %s", ans)
		}
	})
}

// 2. RFC 9126 §4: a pushed request is what was pushed; scope, nonce and
// prompt added to the authorization link are ignored.
func TestSignInReviewPARIgnoresFrontChannel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		const n1 = "nonce-pushed-N1-0123"
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(method, func(t *testing.T) {
				params, verifier := f.reviewPushParams(url.Values{"scope": {"openid api:read"}, "nonce": {n1}})
				ru := f.reviewMustPush(t, params)
				link := url.Values{"client_id": {f.client.ID}, "request_uri": {ru},
					"scope": {"openid offline_access"}, "nonce": {"EVIL1234"}, "prompt": {"none"}}
				a := newAgent(t, f.ts.PublicURL, testUsername, testPassword) // not signed in
				start := f.ts.PublicURL + "/oauth2/authorize?" + link.Encode()
				if method == http.MethodPost {
					p := a.send(http.MethodPost, f.ts.PublicURL+"/oauth2/authorize", link, nil)
					// prompt=none would answer login_required here.
					wantLoginRedirect(t, "POST of the pushed request with prompt=none", p)
					if p.location() == nil {
						t.FailNow()
					}
					start = p.location().String()
				}
				back, resp, body := a.Do(start)
				if back == nil {
					t.Fatalf("pushed request ended on a page %d: %.300s", resp.StatusCode, body)
				}
				q := f.callback(t, back, f.redirect, reviewState)
				if q.Get("error") != "" || q.Get("code") == "" {
					t.Fatalf("pushed request with front-channel prompt=none: %s (prompt=none was applied?)", back)
				}
				// (consent is asked in the first subtest only: same scopes)
				if a.Pages["login"] != 1 {
					t.Errorf("pages %v, want one login (prompt=none must not apply)", a.Pages)
				}
				ans := f.exchange(t, q.Get("code"), verifier)
				if ans.Status != http.StatusOK {
					t.Fatalf("exchange: %s", ans)
				}
				scopes := strings.Fields(ans.Scope)
				if slices.Contains(scopes, "offline_access") || !slices.Contains(scopes, "api:read") || !slices.Contains(scopes, "openid") {
					t.Errorf("granted scope %q, want the pushed \"openid api:read\"", ans.Scope)
				}
				if ans.RefreshToken != "" {
					t.Error("a refresh token was issued: offline_access from the front channel was granted")
				}
				if sc, _ := jwtPayload(t, ans.AccessToken)["scope"].(string); strings.Contains(sc, "offline_access") {
					t.Errorf("access token scope %q", sc)
				}
				idt, err := f.provider.Verifier(&oidc.Config{ClientID: f.client.ID}).Verify(context.Background(), ans.IDToken)
				if err != nil {
					t.Fatalf("ID token: %v", err)
				}
				if idt.Nonce != n1 {
					t.Errorf("ID token nonce %q, want the pushed %q", idt.Nonce, n1)
				}
				// The grant session records the pushed scope too.
				sid, _ := jwtPayload(t, ans.AccessToken)["sid"].(string)
				status, raw := f.ts.adminDo(http.MethodGet, "/admin/users/"+url.PathEscape(f.userID)+"/sessions", nil)
				var list []adminSession
				if err := json.Unmarshal(raw, &list); status != http.StatusOK || err != nil {
					t.Fatalf("list sessions: %d %s", status, raw)
				}
				found := false
				for _, s := range list {
					if s.ID == sid {
						found = true
						if strings.Contains(s.Scope, "offline_access") {
							t.Errorf("grant session scope %q", s.Scope)
						}
					}
				}
				if !found {
					t.Errorf("grant session %s not listed", sid)
				}
			})
		}
	})
}

// 3. max_age is measured against the request time: max_age=0 with a
// browser session signs in once and then completes; out-of-range values
// are invalid_request.
func TestSignInReviewMaxAge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		t1 := idAuthTime(t, f.signIn(t, a))
		time.Sleep(1100 * time.Millisecond)

		for i := 0; i < 2; i++ { // the second right after the first
			before := a.Pages["login"]
			requested := time.Now().Unix()
			// a.Do fails the test after 20 steps: a sign-in loop ends there.
			g := f.signIn(t, a, oauth2.SetAuthURLParam("max_age", "0"))
			if got := a.Pages["login"] - before; got != 1 {
				t.Errorf("max_age=0 #%d: %d login pages, want exactly 1", i+1, got)
			}
			if at := idAuthTime(t, g); at < requested || at <= t1 {
				t.Errorf("max_age=0 #%d: auth_time %d, want at or after the request (%d) and after the first sign-in (%d)", i+1, at, requested, t1)
			}
		}

		// The largest accepted value does not overflow into a sign-in.
		before := a.Pages["login"]
		f.signIn(t, a, oauth2.SetAuthURLParam("max_age", "315360000"))
		if a.Pages["login"] != before {
			t.Errorf("max_age=315360000: %d login pages, want none", a.Pages["login"]-before)
		}

		for _, v := range []string{"99999999999", "315360001", "9223372036854775807", "-1"} {
			t.Run("max_age="+v, func(t *testing.T) {
				for name, ag := range map[string]*agent{"signed in": a, "not signed in": newAgent(t, f.ts.PublicURL, testUsername, testPassword)} {
					u, _ := f.authURL(url.Values{"max_age": {v}})
					f.wantErrorRedirect(t, name, ag.send(http.MethodGet, u, nil, nil), f.redirect, reviewState, "invalid_request")
				}
			})
		}
	})
}

// 4. Of parallel exchanges of one code, the losers revoke what the winner
// got, with no later replay needed (RFC 6749 §4.1.2), whichever way a loser
// learns the code is used: (a) fosite finds it used
// (ErrInvalidatedAuthorizeCode), (b) our conflict inside the exchange
// transaction, or (c) it found the code unused but its PKCE row gone. Two
// racers make (b) and (c) common; twenty make (a) common.
func TestSignInReviewCodeRaceLoserRevokes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
		for _, tc := range []struct{ racers, rounds int }{{20, 5}, {2, 30}} {
			t.Run(fmt.Sprintf("%d racers", tc.racers), func(t *testing.T) {
				paths := map[string]int{}
				for round := 0; round < tc.rounds; round++ {
					verifier := oauth2.GenerateVerifier()
					code := f.authorize(t, a, verifier)
					form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
						"redirect_uri": {f.redirect}, "code_verifier": {verifier}}
					hc := protoClient()
					type result struct {
						a   tokenAnswer
						err error
					}
					res := parallel(tc.racers, func(int) result {
						ans, err := tokenRequest(hc, f.ts.PublicURL, f.client, form)
						return result{ans, err}
					})
					hc.CloseIdleConnections()
					answers, errs := make([]tokenAnswer, tc.racers), make([]error, tc.racers)
					for i, r := range res {
						answers[i], errs[i] = r.a, r.err
					}
					counts, err := tally(answers, errs)
					if err != nil {
						t.Fatalf("round %d: transport errors: %v", round, err)
					}
					if counts["200"] != 1 || counts["400 invalid_grant"] != tc.racers-1 {
						t.Fatalf("round %d: answers %v, want exactly one 200 and %d × 400 invalid_grant", round, counts, tc.racers-1)
					}
					var winner tokenAnswer
					for _, ans := range answers {
						switch d := ans.ErrorDescription; {
						case ans.Status == http.StatusOK:
							winner = ans
						case d == "The authorization code has already been used.":
							paths["conflict in the exchange"]++
						case strings.HasSuffix(d, "The authorization code has already been used."):
							paths["code found used"]++
						case strings.Contains(d, "PKCE"):
							paths["PKCE row gone"]++
						default:
							paths[d]++
						}
					}
					if winner.AccessToken == "" || winner.RefreshToken == "" {
						t.Fatalf("round %d: the winner's answer lacks tokens: %s", round, winner)
					}
					sid, _ := jwtPayload(t, winner.AccessToken)["sid"].(string)
					// No replay here: the losers alone must have revoked it.
					if _, m := f.introspectAs(t, f.client, winner.AccessToken); m["active"] != false {
						t.Errorf("round %d: the winner's access token is still active after the race (losers: %v)", round, paths)
						continue
					}
					f.wantGrantRevoked(t, grant{Access: winner.AccessToken, Refresh: winner.RefreshToken, SID: sid})
				}
				t.Logf("how the losers learnt the code was used: %v", paths)
			})
		}
	})
}

// 5. Logout asks for confirmation unless the hint names a live grant of
// the person signed in here.
func TestSignInReviewLogoutAsks(t *testing.T) {
	const bye = "http://127.0.0.1:9/bye"
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		logoutURL := func(q url.Values) string { return f.ts.PublicURL + "/oauth2/logout?" + q.Encode() }
		wantConfirmation := func(t *testing.T, what string, p page) form {
			t.Helper()
			if p.Status != http.StatusOK || p.location() != nil {
				t.Fatalf("%s: %d to %v, want a 200 confirmation page and no redirect (%.200s)", what, p.Status, p.location(), p.Body)
			}
			lf := formWith(t, p, "csrf_token")
			if lf.Fields.Get("logout") == "" {
				t.Fatalf("%s: the confirmation form carries no pending logout: %v", what, lf.Fields)
			}
			return lf
		}

		t.Run("valid hint, no browser session", func(t *testing.T) {
			a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			g := f.signIn(t, a)
			fresh := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			p := fresh.send(http.MethodGet, logoutURL(url.Values{"id_token_hint": {g.ID}, "post_logout_redirect_uri": {bye}, "state": {"s1"}}), nil, nil)
			lf := wantConfirmation(t, "hint without a session", p)
			f.wantGrantLive(t, g)
			if !f.signedIn(t, a) {
				t.Error("the person's own browser was signed out")
			}
			// Confirming is the person's decision: the hinted grant ends.
			done := fresh.submit(p, lf, lf.Fields, nil)
			if done.Status != http.StatusSeeOther || done.Header.Get("Location") != bye+"?state=s1" {
				t.Fatalf("confirmed logout: %d to %q, want 303 to %s?state=s1", done.Status, done.Header.Get("Location"), bye)
			}
			f.wantGrantRevoked(t, g)
		})

		t.Run("hint of a revoked grant while signed in", func(t *testing.T) {
			a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			old := f.signIn(t, a)
			live := f.signIn(t, a)
			if status, body := f.ts.adminDo(http.MethodDelete, "/admin/sessions/"+old.SID, nil); status != http.StatusNoContent {
				t.Fatalf("DELETE session: %d %s", status, body)
			}
			p := a.send(http.MethodGet, logoutURL(url.Values{"id_token_hint": {old.ID}, "post_logout_redirect_uri": {bye}, "state": {"s2"}}), nil, nil)
			wantConfirmation(t, "hint of a revoked grant", p)
			if !f.signedIn(t, a) {
				t.Error("an old ID token signed the browser out without a question")
			}
			f.wantGrantLive(t, live)

			// Control: the hint of the live grant logs out at once.
			p = a.send(http.MethodGet, logoutURL(url.Values{"id_token_hint": {live.ID}, "post_logout_redirect_uri": {bye}, "state": {"s3"}}), nil, nil)
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != bye+"?state=s3" {
				t.Fatalf("logout with a live hint: %d to %q, want 303 to %s?state=s3", p.Status, p.Header.Get("Location"), bye)
			}
			f.wantGrantRevoked(t, live)
			if f.signedIn(t, a) {
				t.Error("still signed in after the logout")
			}
		})
	})
}

// 6. PAR refuses a query string: parameters there would escape the
// duplicate check, and a client_secret must never be in a URL.
func TestSignInReviewPARQueryString(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		params, _ := f.reviewPushParams(url.Values{"scope": {"openid api:read"}})
		for _, query := range []string{
			"client_secret=x",
			"client_secret=" + url.QueryEscape(f.client.Secret),
			"scope=" + url.QueryEscape("openid offline_access"),
			"prompt=none",
			"x=1",
		} {
			t.Run(query, func(t *testing.T) {
				status, hdr, m := f.reviewPush(t, f.client, "/oauth2/par?"+query, params)
				if status != http.StatusBadRequest || m["error"] != "invalid_request" || m["request_uri"] != nil {
					t.Errorf("PAR with ?%s: %d %v, want 400 invalid_request", query, status, m)
				}
				if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("PAR with ?%s: Content-Type %q, want JSON", query, ct)
				}
				if strings.Contains(f.ts.Logs.String(), f.client.Secret) {
					t.Error("the client secret sent in the query string was logged")
				}
			})
		}
		// Control: the same body without a query string is accepted.
		f.reviewMustPush(t, params)
	})
}

// 7. POST /oauth2/authorize must be urlencoded (fosite would read
// multipart past our duplicate check), and a request is bounded (8 KiB).
func TestSignInReviewAuthorizeBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		authorize := f.ts.PublicURL + "/oauth2/authorize"
		params, _ := f.reviewPushParams(nil)

		t.Run("content types", func(t *testing.T) {
			var mp bytes.Buffer
			mw := multipart.NewWriter(&mp)
			for k, vs := range params {
				for _, v := range vs {
					_ = mw.WriteField(k, v)
				}
			}
			_ = mw.Close()
			a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			wantErrorPage(t, "multipart/form-data", a.sendBody(http.MethodPost, authorize, mw.FormDataContentType(), mp.Bytes()), http.StatusUnsupportedMediaType, "")
			// multipart with a parameter also in the query: what the
			// duplicate check used to miss.
			wantErrorPage(t, "multipart/form-data with a query", a.sendBody(http.MethodPost, authorize+"?scope=openid", mw.FormDataContentType(), mp.Bytes()), http.StatusUnsupportedMediaType, "")
			wantErrorPage(t, "text/plain", a.sendBody(http.MethodPost, authorize, "text/plain", []byte(params.Encode())), http.StatusUnsupportedMediaType, "")
			wantErrorPage(t, "no content type", a.sendBody(http.MethodPost, authorize, "", []byte(params.Encode())), http.StatusUnsupportedMediaType, "")
			// Control: the same parameters urlencoded, with a charset.
			wantLoginRedirect(t, "urlencoded POST", a.sendBody(http.MethodPost, authorize, "application/x-www-form-urlencoded; charset=utf-8", []byte(params.Encode())))
		})

		t.Run("size", func(t *testing.T) {
			a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)
			big, _ := f.authURL(url.Values{"x_padding": {strings.Repeat("a", 9000)}})
			wantErrorPage(t, "GET over 8 KiB", a.send(http.MethodGet, big, nil, nil), http.StatusBadRequest, "")

			body := cloneValues(params)
			body.Set("x_padding", strings.Repeat("a", 9000))
			wantErrorPage(t, "POST over 8 KiB", a.send(http.MethodPost, authorize, body, nil), http.StatusBadRequest, "")

			// Split between the query and the body, each under the limit.
			half := cloneValues(params)
			half.Set("x_padding", strings.Repeat("b", 4500))
			wantErrorPage(t, "query and body over 8 KiB together", a.send(http.MethodPost, authorize+"?x_more="+strings.Repeat("c", 4500), half, nil), http.StatusBadRequest, "")

			// A long state under the 2048 limit plus padding.
			st, _ := f.authURL(url.Values{"state": {strings.Repeat("s", 2000)}, "x_padding": {strings.Repeat("a", 7000)}})
			wantErrorPage(t, "long state and padding", a.send(http.MethodGet, st, nil, nil), http.StatusBadRequest, "")

			// Control: a large request under the limit goes on to sign-in.
			ok, _ := f.authURL(url.Values{"x_padding": {strings.Repeat("a", 6000)}})
			wantLoginRedirect(t, "GET of 6 KiB", a.send(http.MethodGet, ok, nil, nil))
		})
	})
}

// 8. RFC 8707 resource at the authorization endpoint: it narrows the
// access token's audience to registered values, and anything else is
// invalid_target.
func TestSignInReviewResource(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, map[string]any{"audience": []string{"https://api.example"}})
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)

		// signInWith runs a flow of f with extra parameters and returns the
		// token answer.
		signInWith := func(t *testing.T, f *signInFixture, params url.Values) tokenAnswer {
			t.Helper()
			u, verifier := f.authURL(params)
			back, resp, body := a.Do(u)
			if back == nil {
				t.Fatalf("ended on a page %d: %.300s", resp.StatusCode, body)
			}
			q := f.callback(t, back, f.redirect, reviewState)
			if q.Get("code") == "" {
				t.Fatalf("no code: %s", back)
			}
			ans := f.exchange(t, q.Get("code"), verifier)
			if ans.Status != http.StatusOK {
				t.Fatalf("exchange: %s", ans)
			}
			return ans
		}
		wantAud := func(t *testing.T, what string, tok string, want ...string) {
			t.Helper()
			got := audClaim(t, jwtPayload(t, tok))
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: aud %v, want exactly %v", what, got, want)
			}
		}

		t.Run("registered resource", func(t *testing.T) {
			ans := signInWith(t, f, url.Values{"resource": {"https://api.example"}, "scope": {"openid offline_access"}})
			wantAud(t, "access token", ans.AccessToken, "https://api.example")
			if m := f.wantActive(t, f.client, "access token", ans.AccessToken); m["aud"] != nil {
				aud := audClaim(t, m)
				if !slices.Equal(aud, []string{"https://api.example"}) {
					t.Errorf("introspected aud %v", aud)
				}
			}
			if ans.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
			wantAud(t, "refreshed access token", f.mustRefresh(t, ans.RefreshToken).AccessToken, "https://api.example")
		})

		for _, tc := range []struct{ name, resource string }{
			{"unregistered", "https://other.example"},
			{"registered with a path", "https://api.example/x"},
			{"registered with a fragment", "https://api.example#f"},
			{"relative", "api.example"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for name, ag := range map[string]*agent{"signed in": a, "not signed in": newAgent(t, f.ts.PublicURL, testUsername, testPassword)} {
					u, _ := f.authURL(url.Values{"resource": {tc.resource}})
					f.wantErrorRedirect(t, name, ag.send(http.MethodGet, u, nil, nil), f.redirect, reviewState, "invalid_target")
				}
				// One good and one bad value: still refused.
				u, _ := f.authURL(url.Values{"resource": {"https://api.example", tc.resource}})
				f.wantErrorRedirect(t, "with a registered one", a.send(http.MethodGet, u, nil, nil), f.redirect, reviewState, "invalid_target")
			})
		}

		t.Run("client with two audiences", func(t *testing.T) {
			c2 := f.ts.createClient(map[string]any{"client_name": "Two APIs", "redirect_uris": []string{testRedirect},
				"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid offline_access",
				"audience": []string{"https://api.example", "https://api2.example"}})
			f2 := f.reviewAs(c2, "openid", "offline_access")
			wantAud(t, "no resource", signInWith(t, f2, nil).AccessToken, "https://api.example", "https://api2.example")
			ans := signInWith(t, f2, url.Values{"resource": {"https://api2.example"}, "scope": {"openid offline_access"}})
			wantAud(t, "resource=https://api2.example", ans.AccessToken, "https://api2.example")
			wantAud(t, "its refresh", f2.mustRefresh(t, ans.RefreshToken).AccessToken, "https://api2.example")
			wantAud(t, "both resources", signInWith(t, f2, url.Values{"resource": {"https://api.example", "https://api2.example"}}).AccessToken,
				"https://api.example", "https://api2.example")
		})
	})
}

// 9. Redirects and pages of the browser-facing endpoints are never framed
// nor cached.
func TestSignInReviewBrowserResponseHeaders(t *testing.T) {
	const bye = "http://127.0.0.1:9/bye"
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		check := func(what string, p page) {
			t.Helper()
			h := p.Header
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s (%d): Content-Security-Policy %q lacks frame-ancestors 'none'", what, p.Status, csp)
			}
			if xfo := h.Get("X-Frame-Options"); xfo != "DENY" {
				t.Errorf("%s (%d): X-Frame-Options %q, want DENY", what, p.Status, xfo)
			}
			if cc := h.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("%s (%d): Cache-Control %q, want no-store", what, p.Status, cc)
			}
		}
		a := newAgent(t, f.ts.PublicURL, testUsername, testPassword)

		u, verifier := f.authURL(nil)
		toLogin := a.send(http.MethodGet, u, nil, nil)
		wantLoginRedirect(t, "authorize", toLogin)
		check("authorize: 303 to /login", toLogin)
		pu, _ := url.Parse(u)
		post := a.send(http.MethodPost, f.ts.PublicURL+"/oauth2/authorize", pu.Query(), nil)
		wantLoginRedirect(t, "POST authorize", post)
		check("POST authorize: 303 to /login", post)

		none, _ := f.authURL(url.Values{"prompt": {"none"}})
		errRedirect := a.send(http.MethodGet, none, nil, nil)
		f.wantErrorRedirect(t, "prompt=none", errRedirect, f.redirect, reviewState, "login_required")
		check("authorize: error redirect login_required", errRedirect)

		bad, _ := f.authURL(url.Values{"scope": {"openid admin"}})
		errRedirect = a.send(http.MethodGet, bad, nil, nil)
		f.wantErrorRedirect(t, "invalid scope", errRedirect, f.redirect, reviewState, "invalid_scope")
		check("authorize: error redirect invalid_scope", errRedirect)

		unknown, _ := f.authURL(url.Values{"client_id": {"nope"}})
		errPage := a.send(http.MethodGet, unknown, nil, nil)
		wantErrorPage(t, "unknown client", errPage, http.StatusBadRequest, "")
		check("authorize: error page", errPage)
		badResume := a.send(http.MethodGet, f.ts.PublicURL+"/oauth2/authorize?resume=garbage", nil, nil)
		wantErrorPage(t, "bad resume", badResume, http.StatusBadRequest, "")
		check("authorize: expired link page", badResume)

		// Through sign-in and consent step by step.
		login := a.open(toLogin.location().String())
		if !isLoginPage(login) {
			t.Fatalf("no login page: %d %.300s", login.Status, login.Body)
		}
		lf := formWith(t, login, "password")
		signedIn := a.submit(login, lf, loginValues(lf, testUsername, testPassword), nil)
		resume := signedIn.location()
		if resume == nil || resume.Path != "/oauth2/authorize" {
			t.Fatalf("after sign-in: %d to %v, want the authorization endpoint", signedIn.Status, resume)
		}
		toConsent := a.send(http.MethodGet, resume.String(), nil, nil)
		if loc := toConsent.location(); toConsent.Status != http.StatusSeeOther || loc == nil || loc.Path != "/consent" {
			t.Fatalf("resumed authorize: %d to %v, want 303 to /consent", toConsent.Status, loc)
		}
		check("authorize (resumed): 303 to /consent", toConsent)
		consent := a.open(toConsent.location().String())
		if !isConsentPage(consent) {
			t.Fatalf("no consent page: %d %.300s", consent.Status, consent.Body)
		}
		check("consent page", consent)
		cf := formWith(t, consent, "decision")
		v := cloneValues(cf.Fields)
		v.Set("decision", "allow")
		withCode := a.submit(consent, cf, v, nil)
		q := f.callback(t, withCode.location(), f.redirect, reviewState)
		if q.Get("code") == "" {
			t.Fatalf("consent: no code in %v", withCode.location())
		}
		check("consent: redirect with the code", withCode)
		g := f.exchange(t, q.Get("code"), verifier)
		if g.Status != http.StatusOK {
			t.Fatalf("exchange: %s", g)
		}

		// Signed in and consented: authorize answers with the code at once.
		u, _ = f.authURL(nil)
		sso := a.send(http.MethodGet, u, nil, nil)
		if q := f.callback(t, sso.location(), f.redirect, reviewState); q.Get("code") == "" {
			t.Fatalf("SSO: no code in %v", sso.location())
		}
		check("authorize: redirect with the code", sso)

		// Logout: the confirmation page, and the redirect after it.
		confirm := a.send(http.MethodGet, f.ts.PublicURL+"/oauth2/logout?"+url.Values{"client_id": {f.client.ID}, "post_logout_redirect_uri": {bye}}.Encode(), nil, nil)
		check("logout confirmation page", confirm)
		out := a.send(http.MethodGet, f.ts.PublicURL+"/oauth2/logout?"+url.Values{"id_token_hint": {g.IDToken}, "post_logout_redirect_uri": {bye}}.Encode(), nil, nil)
		if out.Status != http.StatusSeeOther || out.Header.Get("Location") != bye {
			t.Fatalf("logout: %d to %q, want 303 to %s", out.Status, out.Header.Get("Location"), bye)
		}
		check("logout: redirect", out)
	})
}
