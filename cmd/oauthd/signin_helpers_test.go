package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Helpers shared by the signin_*_test.go suites: raw protocol calls (for
// requests x/oauth2 cannot or should not make), step-by-step browser
// requests through an agent's cookie jar, and checks of a grant's state.

// protoClient makes protocol requests without following redirects; its
// transport keeps enough idle connections that 100 parallel requests each
// get one of their own.
func protoClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// tokenAnswer is one answer of /oauth2/token.
type tokenAnswer struct {
	Status           int         `json:"-"`
	Header           http.Header `json:"-"`
	Body             string      `json:"-"`
	AccessToken      string      `json:"access_token"`
	RefreshToken     string      `json:"refresh_token"`
	IDToken          string      `json:"id_token"`
	Scope            string      `json:"scope"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
}

func (a tokenAnswer) String() string { return fmt.Sprintf("%d %.300s", a.Status, a.Body) }

// postClientForm posts form to path as client c: HTTP Basic (RFC 6749
// §2.3.1, form-encoded) for a confidential client, client_id in the body
// for a public one (Secret ""). It is safe to call from any goroutine.
func postClientForm(hc *http.Client, base, path string, c registeredClient, form url.Values) (int, http.Header, []byte, error) {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if c.Secret == "" && c.ID != "" {
		f.Set("client_id", c.ID)
	}
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(f.Encode()))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// tokenRequest posts form to /oauth2/token as c.
func tokenRequest(hc *http.Client, base string, c registeredClient, form url.Values) (tokenAnswer, error) {
	status, hdr, body, err := postClientForm(hc, base, "/oauth2/token", c, form)
	if err != nil {
		return tokenAnswer{}, err
	}
	a := tokenAnswer{Status: status, Header: hdr, Body: string(body)}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("token answer %d is not JSON: %q", status, body)
	}
	return a, nil
}

// token posts form to /oauth2/token as the fixture's client.
func (f *signInFixture) token(t *testing.T, form url.Values) tokenAnswer {
	t.Helper()
	return f.tokenAs(t, f.client, form)
}

func (f *signInFixture) tokenAs(t *testing.T, c registeredClient, form url.Values) tokenAnswer {
	t.Helper()
	a, err := tokenRequest(http.DefaultClient, f.ts.PublicURL, c, form)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("token answer %d without Cache-Control: no-store: %q", a.Status, a.Header.Get("Cache-Control"))
	}
	return a
}

// refresh presents refresh token rt as the fixture's client.
func (f *signInFixture) refresh(t *testing.T, rt string) tokenAnswer {
	t.Helper()
	return f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// mustRefresh refreshes rt and fails the test unless it works.
func (f *signInFixture) mustRefresh(t *testing.T, rt string) tokenAnswer {
	t.Helper()
	a := f.refresh(t, rt)
	if a.Status != http.StatusOK || a.RefreshToken == "" || a.AccessToken == "" {
		t.Fatalf("refresh: want 200 with tokens, got %s", a)
	}
	return a
}

// exchange redeems code with verifier at the fixture's redirect URI.
func (f *signInFixture) exchange(t *testing.T, code, verifier string) tokenAnswer {
	t.Helper()
	return f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {f.redirect}, "code_verifier": {verifier}})
}

// wantOAuthError checks an error answer's status and error code.
func wantOAuthError(t *testing.T, what string, a tokenAnswer, status int, code string) {
	t.Helper()
	if a.Status != status || a.Error != code {
		t.Errorf("%s: want %d %s, got %s", what, status, code, a)
	}
	if a.AccessToken != "" || a.RefreshToken != "" {
		t.Errorf("%s: an error answer carries tokens: %s", what, a)
	}
}

// grant is what one sign-in gave the client.
type grant struct {
	Access, Refresh, ID string
	SID                 string
}

// signIn runs the authorization-code flow with agent a and redeems the
// code with x/oauth2, checking the ID token with go-oidc.
func (f *signInFixture) signIn(t *testing.T, a *agent, opts ...oauth2.AuthCodeOption) grant {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := f.authorize(t, a, verifier, opts...)
	tok, err := f.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	g := grant{Access: tok.AccessToken, Refresh: tok.RefreshToken}
	g.ID, _ = tok.Extra("id_token").(string)
	if _, err := f.provider.Verifier(&oidc.Config{ClientID: f.oauth.ClientID}).Verify(context.Background(), g.ID); err != nil {
		t.Fatalf("ID token: %v", err)
	}
	g.SID, _ = jwtPayload(t, g.Access)["sid"].(string)
	if g.SID == "" {
		t.Fatal("access token without sid")
	}
	return g
}

// jwtPayload decodes a JWT's claims without verifying it (the tests that
// need verification use go-oidc or verifyAccessToken).
func jwtPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.20q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

// introspectAs introspects token as client c and returns the status and
// the decoded answer.
func (f *signInFixture) introspectAs(t *testing.T, c registeredClient, token string) (int, map[string]any) {
	t.Helper()
	status, _, body, err := postClientForm(http.DefaultClient, f.ts.PublicURL, "/oauth2/introspect", c, url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("introspection answer %d is not JSON: %s", status, body)
	}
	return status, m
}

// wantInactive checks that c sees token as {"active":false} and nothing
// else (RFC 7662 §2.2).
func (f *signInFixture) wantInactive(t *testing.T, c registeredClient, what, token string) {
	t.Helper()
	status, m := f.introspectAs(t, c, token)
	if status != http.StatusOK || m["active"] != false || len(m) != 1 {
		t.Errorf("introspect %s: want 200 {\"active\":false}, got %d %v", what, status, m)
	}
}

// wantActive checks that c sees token active and returns the answer.
func (f *signInFixture) wantActive(t *testing.T, c registeredClient, what, token string) map[string]any {
	t.Helper()
	status, m := f.introspectAs(t, c, token)
	if status != http.StatusOK || m["active"] != true {
		t.Errorf("introspect %s: want 200 active:true, got %d %v", what, status, m)
	}
	return m
}

// revokeAs posts token to /oauth2/revoke as c.
func (f *signInFixture) revokeAs(t *testing.T, c registeredClient, token string) (int, []byte) {
	t.Helper()
	status, _, body, err := postClientForm(http.DefaultClient, f.ts.PublicURL, "/oauth2/revoke", c, url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// adminSession is one entry of GET /admin/users/{id}/sessions.
type adminSession struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// sessionIDs lists the user's active grant sessions through the admin API.
func (f *signInFixture) sessionIDs(t *testing.T) []string {
	t.Helper()
	status, body := f.ts.adminDo(http.MethodGet, "/admin/users/"+url.PathEscape(f.userID)+"/sessions", nil)
	if status != http.StatusOK {
		t.Fatalf("list sessions: %d %s", status, body)
	}
	var list []adminSession
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("list sessions: %v: %s", err, body)
	}
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids
}

// wantGrantRevoked checks that grant g is over: its refresh token answers
// invalid_grant, its access token introspects inactive and /userinfo
// refuses it, and the admin API no longer lists its session.
func (f *signInFixture) wantGrantRevoked(t *testing.T, g grant) {
	t.Helper()
	if g.Refresh != "" {
		wantOAuthError(t, "refresh of a revoked grant", f.refresh(t, g.Refresh), http.StatusBadRequest, "invalid_grant")
		f.wantInactive(t, f.client, "refresh token of a revoked grant", g.Refresh)
	}
	f.wantInactive(t, f.client, "access token of a revoked grant", g.Access)
	if status, hdr, body := f.userinfoGet(t, g.Access); status != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("userinfo with the access token of a revoked grant: want 401 invalid_token, got %d %q %s", status, hdr.Get("WWW-Authenticate"), body)
	}
	if ids := f.sessionIDs(t); slices.Contains(ids, g.SID) {
		t.Errorf("admin still lists revoked session %s: %v", g.SID, ids)
	}
}

// wantGrantLive checks the opposite, without using the refresh token (so
// the grant stays as it is).
func (f *signInFixture) wantGrantLive(t *testing.T, g grant) {
	t.Helper()
	f.wantActive(t, f.client, "access token", g.Access)
	if g.Refresh != "" {
		f.wantActive(t, f.client, "refresh token", g.Refresh)
	}
	if ids := f.sessionIDs(t); !slices.Contains(ids, g.SID) {
		t.Errorf("admin does not list live session %s: %v", g.SID, ids)
	}
}

// userinfoGet calls GET /userinfo with a bearer token.
func (f *signInFixture) userinfoGet(t *testing.T, at string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.ts.PublicURL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// --- step-by-step browser requests through an agent's cookie jar ---

// page is one answer the browser got.
type page struct {
	URL    *url.URL // the request URL
	Status int
	Header http.Header
	Body   string
}

// location is the page's Location header resolved against its URL, or nil.
func (p page) location() *url.URL {
	loc := p.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := p.URL.Parse(loc)
	if err != nil {
		return nil
	}
	return u
}

// onServer reports whether u is on the server the agent talks to.
func (a *agent) onServer(u *url.URL) bool { return strings.HasPrefix(u.String(), a.server+"/") }

// send makes one request with the agent's cookies and returns the answer
// without following anything.
func (a *agent) send(method, rawURL string, form url.Values, header map[string]string) page {
	a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// open GETs rawURL and follows redirects on the server; it stops at a page
// or at a redirect off the server (returned as the last answer, whose
// location() is the target).
func (a *agent) open(rawURL string) page {
	a.t.Helper()
	for i := 0; i < 10; i++ {
		p := a.send(http.MethodGet, rawURL, nil, nil)
		next := p.location()
		if p.Status < 300 || p.Status >= 400 || next == nil || !a.onServer(next) {
			return p
		}
		rawURL = next.String()
	}
	a.t.Fatalf("too many redirects from %s", rawURL)
	return page{}
}

// submit posts form f of page p (its action resolved against p's URL)
// with values; header adds request headers.
func (a *agent) submit(p page, f form, values url.Values, header map[string]string) page {
	a.t.Helper()
	target, err := p.URL.Parse(f.Action)
	if err != nil {
		a.t.Fatal(err)
	}
	return a.send(http.MethodPost, target.String(), values, header)
}

// formWith returns the first POST form of p that has an input named name.
func formWith(t *testing.T, p page, name string) form {
	t.Helper()
	for _, f := range forms(p.Body) {
		if f.has(name) {
			return f
		}
	}
	t.Fatalf("no form with %q on %s (%d): %.300s", name, p.URL, p.Status, p.Body)
	return form{}
}

// isLoginPage and isConsentPage recognise the pages by the HTML contract.
func isLoginPage(p page) bool {
	for _, f := range forms(p.Body) {
		if f.has("username") && f.has("password") {
			return true
		}
	}
	return false
}

func isConsentPage(p page) bool {
	for _, f := range forms(p.Body) {
		if f.has("decision") {
			return true
		}
	}
	return false
}

// loginValues fills the login form f with credentials.
func loginValues(f form, username, password string) url.Values {
	v := url.Values{}
	for k, vs := range f.Fields {
		v[k] = append([]string(nil), vs...)
	}
	v.Set("username", username)
	v.Set("password", password)
	return v
}

// cookie returns the value of the agent's cookie name for the server.
func (a *agent) cookie(name string) string {
	u, _ := url.Parse(a.server)
	for _, c := range a.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie plants a cookie in the agent's jar.
func (a *agent) setCookie(name, value string) {
	u, _ := url.Parse(a.server)
	a.client.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// callback checks an authorization response at the client: the redirect
// target must start with redirect and carry iss and state; it returns the
// query.
func (f *signInFixture) callback(t *testing.T, back *url.URL, redirect, state string) url.Values {
	t.Helper()
	if back == nil {
		t.Fatal("no redirect to the client")
	}
	if !strings.HasPrefix(back.String(), redirect+"?") {
		t.Fatalf("redirected to %s, want %s?...", back, redirect)
	}
	q := back.Query()
	if q.Get("iss") != f.ts.PublicURL {
		t.Errorf("callback %s: iss %q, want %q (RFC 9207)", back, q.Get("iss"), f.ts.PublicURL)
	}
	if q.Get("state") != state {
		t.Errorf("callback %s: state %q, want %q", back, q.Get("state"), state)
	}
	return q
}

// authURL builds an authorization request URL for the fixture's client
// from params over sensible defaults (S256 challenge of a fresh verifier,
// state, nonce, scope openid); a value "" in params removes the parameter.
func (f *signInFixture) authURL(params url.Values) (string, string) {
	verifier := oauth2.GenerateVerifier()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {f.client.ID},
		"redirect_uri":          {f.redirect},
		"scope":                 {"openid"},
		"state":                 {"state-0123456789"},
		"nonce":                 {"nonce-0123456789"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"},
	}
	for k, v := range params {
		if len(v) == 1 && v[0] == "" {
			q.Del(k)
		} else {
			q[k] = v
		}
	}
	return f.ts.PublicURL + "/oauth2/authorize?" + q.Encode(), verifier
}

// wantErrorPage checks that p is our HTML error page with status and no
// redirect at all (RFC 6749 §4.1.2.1), and that no header mentions
// forbidden (an attacker's host).
func wantErrorPage(t *testing.T, what string, p page, status int, forbidden string) {
	t.Helper()
	if p.Status != status {
		t.Errorf("%s: status %d, want %d (%.200s)", what, p.Status, status, p.Body)
	}
	if loc, ok := p.Header["Location"]; ok {
		t.Errorf("%s: Location header %q on an error page", what, loc)
	}
	if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q, want an HTML page", what, ct)
	}
	if forbidden != "" {
		for k, vs := range p.Header {
			for _, v := range vs {
				if strings.Contains(strings.ToLower(v), strings.ToLower(forbidden)) {
					t.Errorf("%s: header %s mentions %q: %q", what, k, forbidden, v)
				}
			}
		}
	}
}

// parallel runs fn n times at once, released together, and returns the
// results in order.
func parallel[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			ready.Done()
			<-start
			out[i] = fn(i)
		}(i)
	}
	ready.Wait()
	close(start)
	done.Wait()
	return out
}

// tally counts answers by status and error code, e.g. "200", "400 invalid_grant".
func tally(answers []tokenAnswer, errs []error) (map[string]int, error) {
	m := map[string]int{}
	var all error
	for i, a := range answers {
		if errs[i] != nil {
			all = errors.Join(all, errs[i])
			m["transport error"]++
			continue
		}
		k := fmt.Sprint(a.Status)
		if a.Error != "" {
			k += " " + a.Error
		}
		m[k]++
	}
	return m, all
}
