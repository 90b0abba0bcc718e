package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/oauthd/oauthd/internal/loadgen"
	"github.com/oauthd/oauthd/oauth"
)

// The scenarios of signed-in users: they need a person, a browser session
// and grants, which bench makes through the public pages and the admin API
// like any client would (never behind the server's back).

// benchRedirect is the redirect URI of the benchmark's user client; nothing
// listens there: bench reads the code from the 303's Location.
const benchRedirect = "http://127.0.0.1:9/cb"

// benchUserScope is what the user-grant scenarios ask for: a refresh token
// (offline_access) and an API scope, no openid (an ID token is an RS256
// signature, about 1.2 ms of CPU here; refresh-oidc measures that).
const benchUserScope = "offline_access bench:read"

// benchTarget is the server under load and what bench set up on it.
type benchTarget struct {
	publicURL, adminURL, adminToken string
	// client is the client_credentials client registered at the start.
	client      benchClient
	concurrency int
	// codeStock is the number of codes each code_exchange worker mints.
	codeStock int
	// external: a --target server, whose clients and sessions bench
	// removes at the end.
	external bool

	mu         sync.Mutex
	userClient *benchClient // authorization_code + refresh_token, skip_consent
	rsClient   *benchClient // resource server: allow_introspection
	users      []*benchUser
}

// benchUser is a person bench created and signed in.
type benchUser struct {
	ID, Username, password string
	// Cookie is the Cookie header of a signed-in browser.
	Cookie string
}

// benchGrant is what a code exchange answered.
type benchGrant struct {
	Access, Refresh, SID string
}

// registerClient registers a client with meta through the admin API.
func (t *benchTarget) registerClient(ctx context.Context, what string, meta map[string]any) (*benchClient, error) {
	body, _ := json.Marshal(meta)
	status, resp, err := benchAdminRequest(ctx, http.MethodPost, t.adminURL, "/admin/clients", t.adminToken, body)
	if err != nil {
		return nil, fmt.Errorf("register the %s client: %w", what, err)
	}
	if status != http.StatusCreated {
		return nil, fmt.Errorf("register the %s client: POST %s/admin/clients answered %d: %s", what, t.adminURL, status, benchTruncate(resp, 300))
	}
	var cl benchClient
	if err := json.Unmarshal(resp, &cl); err != nil || cl.ID == "" || cl.Secret == "" {
		return nil, fmt.Errorf("register the %s client: unexpected answer: %s", what, benchTruncate(resp, 300))
	}
	return &cl, nil
}

// userGrantClient returns the confidential first-party client of the
// user-grant scenarios, registering it on first use.
func (t *benchTarget) userGrantClient(ctx context.Context) (*benchClient, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.userClient != nil {
		return t.userClient, nil
	}
	cl, err := t.registerClient(ctx, "user-grant", map[string]any{
		"client_name":    "bench (sign-in)",
		"grant_types":    []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"},
		"redirect_uris":  []string{benchRedirect},
		"scope":          "openid " + benchUserScope,
		"skip_consent":   true,
	})
	if err != nil {
		return nil, err
	}
	t.userClient = cl
	return cl, nil
}

// resourceServer returns the resource-server client that introspects,
// registering it on first use.
func (t *benchTarget) resourceServer(ctx context.Context) (*benchClient, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rsClient != nil {
		return t.rsClient, nil
	}
	cl, err := t.registerClient(ctx, "resource-server", map[string]any{
		"client_name":         "bench (resource server)",
		"grant_types":         []string{"client_credentials"},
		"scope":               "bench:read",
		"allow_introspection": true,
	})
	if err != nil {
		return nil, err
	}
	t.rsClient = cl
	return cl, nil
}

// cleanup removes from a --target server what bench registered: its
// clients, and the grant sessions of its users (users cannot be deleted
// through the admin API; theirs are named bench-*).
func (t *benchTarget) cleanup(ctx context.Context, warn io.Writer) {
	if !t.external {
		return // the whole database goes
	}
	for _, u := range t.users {
		status, body, err := benchAdminRequest(ctx, http.MethodDelete, t.adminURL, "/admin/users/"+url.PathEscape(u.ID)+"/sessions", t.adminToken, nil)
		if err != nil || status/100 != 2 {
			fmt.Fprintf(warn, "bench: could not revoke the grant sessions of user %s: %d %v %s\n", u.Username, status, err, benchTruncate(body, 200))
		}
	}
	for _, cl := range []*benchClient{t.userClient, t.rsClient} {
		if cl == nil {
			continue
		}
		if err := deleteBenchClient(ctx, t.adminURL, t.adminToken, cl.ID); err != nil {
			fmt.Fprintf(warn, "bench: could not delete the benchmark client %s: %v\n", cl.ID, err)
		}
	}
}

// newUser creates a person through the admin API and signs them in
// through the login page, as a browser would.
func (t *benchTarget) newUser(ctx context.Context, label string) (*benchUser, error) {
	u := &benchUser{Username: "bench-" + label + "-" + strings.ToLower(benchRandom(6)), password: benchRandom(18)}
	body, _ := json.Marshal(map[string]string{"username": u.Username, "password": u.password})
	status, resp, err := benchAdminRequest(ctx, http.MethodPost, t.adminURL, "/admin/users", t.adminToken, body)
	if err != nil {
		return nil, fmt.Errorf("create user %s: %w", u.Username, err)
	}
	if status != http.StatusCreated {
		return nil, fmt.Errorf("create user %s: POST %s/admin/users answered %d: %s", u.Username, t.adminURL, status, benchTruncate(resp, 300))
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp, &created); err != nil || created.ID == "" {
		return nil, fmt.Errorf("create user %s: unexpected answer: %s", u.Username, benchTruncate(resp, 300))
	}
	u.ID = created.ID
	t.mu.Lock()
	t.users = append(t.users, u)
	t.mu.Unlock()
	if u.Cookie, err = benchSignIn(ctx, t.publicURL, u.Username, u.password); err != nil {
		return nil, err
	}
	return u, nil
}

var (
	benchInputRE = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	benchAttrRE  = regexp.MustCompile(`(?is)\b(name|value)\s*=\s*"([^"]*)"`)
)

// benchHiddenInputs returns the name and value of each input of page.
func benchHiddenInputs(page []byte) url.Values {
	out := url.Values{}
	for _, in := range benchInputRE.FindAll(page, -1) {
		var name, value string
		for _, m := range benchAttrRE.FindAllSubmatch(in, -1) {
			if strings.EqualFold(string(m[1]), "name") {
				name = html.UnescapeString(string(m[2]))
			} else {
				value = html.UnescapeString(string(m[2]))
			}
		}
		if name != "" {
			out.Set(name, value)
		}
	}
	return out
}

// benchSignIn signs username in through GET and POST /login and returns
// the Cookie header of that browser (the session cookie, and the CSRF
// cookie beside it).
func benchSignIn(ctx context.Context, base, username, password string) (string, error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{
		Timeout: benchHTTP.Timeout, Transport: benchHTTP.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(req *http.Request) (*http.Response, []byte, error) {
		resp, err := browser.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("sign in: %w", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, b, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/login", nil)
	if err != nil {
		return "", err
	}
	resp, page, err := do(req)
	if err != nil {
		return "", err
	}
	form := benchHiddenInputs(page)
	if resp.StatusCode != http.StatusOK || !form.Has("csrf_token") {
		return "", fmt.Errorf("sign in: GET /login answered %d without a csrf_token input: %s", resp.StatusCode, benchTruncate(page, 200))
	}
	form.Set("username", username)
	form.Set("password", password)
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, page, err = do(req)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 3 {
		return "", fmt.Errorf("sign in as %s: POST /login answered %d: %s", username, resp.StatusCode, benchTruncate(page, 200))
	}
	u, _ := url.Parse(base)
	var cookies []string
	for _, c := range jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if len(cookies) < 2 {
		return "", fmt.Errorf("sign in as %s: no session cookie after POST /login", username)
	}
	return strings.Join(cookies, "; "), nil
}

// benchVerifier returns a PKCE verifier and its S256 challenge.
func benchVerifier() (verifier, challenge string) {
	verifier = benchRandom(32)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeURL is the authorization request of the user-grant client.
func (t *benchTarget) authorizeURL(cl *benchClient, scope, state, challenge string) string {
	return t.publicURL + oauth.PathAuthorize + "?" + url.Values{
		"response_type":         {"code"},
		"client_id":             {cl.ID},
		"redirect_uri":          {benchRedirect},
		"scope":                 {scope},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}.Encode()
}

// basicAuth is the client_secret_basic header value (RFC 6749 §2.3.1:
// id and secret form-encoded first).
func (cl *benchClient) basicAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cl.ID)+":"+url.QueryEscape(cl.Secret)))
}

// grant runs one authorization (with u's browser session; the client
// skips consent) and exchanges the code: a new grant session.
func (t *benchTarget) grant(ctx context.Context, u *benchUser, scope string) (benchGrant, error) {
	cl, err := t.userGrantClient(ctx)
	if err != nil {
		return benchGrant{}, err
	}
	verifier, challenge := benchVerifier()
	state := benchRandom(9)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.authorizeURL(cl, scope, state, challenge), nil)
	if err != nil {
		return benchGrant{}, err
	}
	req.Header.Set("Cookie", u.Cookie)
	resp, err := benchHTTP.Transport.RoundTrip(req) // no redirect following
	if err != nil {
		return benchGrant{}, fmt.Errorf("authorize: %w", err)
	}
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), benchRedirect+"?") {
		return benchGrant{}, fmt.Errorf("authorize: GET %s answered %d, Location %q, want a 303 to %s: %s", oauth.PathAuthorize, resp.StatusCode, resp.Header.Get("Location"), benchRedirect, benchTruncate(page, 200))
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		return benchGrant{}, fmt.Errorf("authorize: %s: %s", e, q.Get("error_description"))
	}
	if q.Get("code") == "" || q.Get("state") != state {
		return benchGrant{}, fmt.Errorf("authorize: redirect %s lacks the code or the state", loc.Redacted())
	}
	return t.exchange(ctx, cl, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {q.Get("code")},
		"redirect_uri":  {benchRedirect},
		"code_verifier": {verifier},
	})
}

// exchange posts form to the token endpoint as cl and reads the tokens.
func (t *benchTarget) exchange(ctx context.Context, cl *benchClient, form url.Values) (benchGrant, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.publicURL+oauth.PathToken, strings.NewReader(form.Encode()))
	if err != nil {
		return benchGrant{}, err
	}
	req.Header.Set("Authorization", cl.basicAuth())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := benchHTTP.Do(req)
	if err != nil {
		return benchGrant{}, fmt.Errorf("token (%s): %w", form.Get("grant_type"), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tok struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.Access == "" || tok.Refresh == "" {
		return benchGrant{}, fmt.Errorf("token (%s): POST %s answered %d, want 200 with an access and a refresh token: %s", form.Get("grant_type"), oauth.PathToken, resp.StatusCode, benchTruncate(body, 300))
	}
	g := benchGrant{Access: tok.Access, Refresh: tok.Refresh}
	g.SID, err = benchSID(tok.Access)
	return g, err
}

// benchSID reads the sid claim of an access token (no verification: the
// server just issued it).
func benchSID(jwt string) (string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		SID string `json:"sid"`
	}
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims.SID == "" {
		return "", errors.New("the access token has no sid claim")
	}
	return claims.SID, nil
}

// grants makes n grants for u, a few at a time.
func (t *benchTarget) grants(ctx context.Context, u *benchUser, scope string, n int) ([]benchGrant, error) {
	out := make([]benchGrant, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range out {
		g.Go(func() error {
			var err error
			out[i], err = t.grant(gctx, u, scope)
			return err
		})
	}
	return out, g.Wait()
}

// sessions lists u's active grant sessions through the admin API.
func (t *benchTarget) sessions(ctx context.Context, u *benchUser) ([]string, error) {
	status, body, err := benchAdminRequest(ctx, http.MethodGet, t.adminURL, "/admin/users/"+url.PathEscape(u.ID)+"/sessions", t.adminToken, nil)
	if err != nil {
		return nil, err
	}
	var list []struct {
		ID string `json:"id"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil {
		return nil, fmt.Errorf("GET /admin/users/%s/sessions answered %d: %s", u.ID, status, benchTruncate(body, 300))
	}
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	return ids, nil
}

// Steps: the per-worker state of the stateful scenarios. They allocate
// nothing per request once their buffers have grown.

// refreshStep holds one worker's grant: it sends the current refresh token
// and takes the rotated one from the answer.
type refreshStep struct {
	sid   string
	token []byte
	body  []byte
	// rotations counts the answers it took a new token from.
	rotations int64
}

func (s *refreshStep) Body(int) []byte {
	s.body = append(s.body[:0], "grant_type=refresh_token&refresh_token="...)
	s.body = benchAppendEscaped(s.body, s.token)
	return s.body
}

func (s *refreshStep) Observe(_ int, a loadgen.Answer) error {
	tok, ok := benchJSONString(a.Body, "refresh_token")
	if !ok {
		return errors.New("no refresh_token in the token answer")
	}
	s.token = append(s.token[:0], tok...)
	s.rotations++
	return nil
}

// codeStep is one worker's login cycle: the authorization request (static:
// the browser session cookie, one state and PKCE challenge for every
// iteration) answers 303 with a code, which the next request exchanges.
type codeStep struct {
	prefix []byte // the exchange's form up to "code="
	body   []byte
}

func newCodeStep(verifier string) *codeStep {
	return &codeStep{prefix: benchExchangePrefix(verifier)}
}

// benchExchangePrefix is the form of a code exchange with PKCE verifier,
// up to "code=".
func benchExchangePrefix(verifier string) []byte {
	return []byte(url.Values{
		"grant_type":    {"authorization_code"},
		"redirect_uri":  {benchRedirect},
		"code_verifier": {verifier},
	}.Encode() + "&code=")
}

func (s *codeStep) Body(i int) []byte {
	if i == 0 {
		return nil // the authorization request as prepared
	}
	return s.body
}

func (s *codeStep) Observe(i int, a loadgen.Answer) error {
	if i == 1 {
		if !bytes.Contains(a.Body, []byte(`"refresh_token"`)) {
			return errors.New("no refresh_token in the code exchange's answer")
		}
		return nil
	}
	code, err := benchRedirectCode(a.Header)
	if err != nil {
		return err
	}
	// The value comes escaped from the Location; it goes into the form as is.
	s.body = append(append(s.body[:0], s.prefix...), code...)
	return nil
}

// benchRedirectCode returns the code (still escaped) in location, a
// redirect to benchRedirect, or why there is none.
func benchRedirectCode(location []byte) ([]byte, error) {
	code, errCode := benchQueryParam(location, "code"), benchQueryParam(location, "error")
	switch {
	case len(errCode) > 0:
		return nil, fmt.Errorf("authorization error %s", errCode)
	case len(code) == 0 || !bytes.HasPrefix(location, []byte(benchRedirect+"?")):
		return nil, fmt.Errorf("the redirect %q carries no code", benchTruncate(location, 100))
	}
	return code, nil
}

// exchangeStep is one worker of code_exchange: its share of the codes
// minted before the load, each sent once, oldest first (codes expire).
type exchangeStep struct {
	prefix []byte   // the exchange's form up to "code="
	codes  [][]byte // escaped, as the Location carried them
	next   int      // the code the next iteration sends
	body   []byte
}

func (s *exchangeStep) Body(int) []byte {
	if s.Exhausted() {
		return nil // the spec's own body, without a code: refused (loadgen.Run asks Exhausted first)
	}
	// Spent whatever the answer: a code is never sent twice.
	s.body = append(append(s.body[:0], s.prefix...), s.codes[s.next]...)
	s.next++
	return s.body
}

// Observe has nothing to do: the spec checks the answer for a refresh token.
func (s *exchangeStep) Observe(int, loadgen.Answer) error { return nil }

// Exhausted reports the stock used up: its worker stops (loadgen.Exhaustible).
func (s *exchangeStep) Exhausted() bool { return s.next >= len(s.codes) }

var _ loadgen.Exhaustible = (*exchangeStep)(nil)

// mintStep takes the code of each authorization request into an
// exchangeStep's stock.
type mintStep struct{ into *exchangeStep }

func (m mintStep) Body(int) []byte { return nil }

func (m mintStep) Observe(_ int, a loadgen.Answer) error {
	code, err := benchRedirectCode(a.Header)
	if err != nil {
		return err
	}
	m.into.codes = append(m.into.codes, bytes.Clone(code))
	return nil
}

// benchQueryParam returns the raw (still escaped) value of the first
// parameter key in the query of location, or nil.
func benchQueryParam(location []byte, key string) []byte {
	_, q, ok := bytes.Cut(location, []byte("?"))
	if !ok {
		return nil
	}
	q, _, _ = bytes.Cut(q, []byte("#"))
	for len(q) > 0 {
		var kv []byte
		kv, q, _ = bytes.Cut(q, []byte("&"))
		if k, v, _ := bytes.Cut(kv, []byte("=")); string(k) == key {
			return v
		}
	}
	return nil
}

// benchJSONString finds "key": "value" in a JSON object and returns the
// value; values with escapes are decoded the slow way.
func benchJSONString(body []byte, key string) ([]byte, bool) {
	rest := body
	for {
		i := bytes.Index(rest, []byte(`"`+key+`"`))
		if i < 0 {
			return nil, false
		}
		rest = bytes.TrimLeft(rest[i+len(key)+2:], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			continue // the key's text inside another string
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		if len(rest) == 0 || rest[0] != '"' {
			return nil, false
		}
		rest = rest[1:]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return nil, false
		}
		if bytes.IndexByte(rest[:end], '\\') >= 0 {
			var m map[string]any
			if json.Unmarshal(body, &m) != nil {
				return nil, false
			}
			s, ok := m[key].(string)
			return []byte(s), ok
		}
		return rest[:end], true
	}
}

// benchAppendEscaped appends v form-encoded, as url.QueryEscape would,
// without allocating.
func benchAppendEscaped(dst, v []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// familyCheck is what the refresh scenarios verify after the load: that
// no rotation was lost. Each worker owns one grant (a refresh-token family,
// a grant session); its last token must refresh once more, and the admin
// API must list exactly one active grant session per worker.
type familyCheck struct {
	Families int `json:"families"`
	// Rotations counts the answers the workers took a new refresh token
	// from (warm-up and the trial request included).
	Rotations int64 `json:"rotations"`
	// FinalRefreshOK counts workers whose last token refreshed once more.
	FinalRefreshOK int `json:"final_refresh_ok"`
	// ActiveSessions is the number of active grant sessions the admin API
	// listed for the scenario's user; MissingSessions the workers' sessions
	// it did not list.
	ActiveSessions  int `json:"active_sessions"`
	MissingSessions int `json:"missing_sessions"`
	// LostRotations counts the families that failed either check.
	LostRotations int    `json:"lost_rotations"`
	FirstProblem  string `json:"first_problem,omitempty"`
}

// ok reports a check with nothing lost and no session too many.
func (f *familyCheck) ok() bool {
	return f.LostRotations == 0 && f.ActiveSessions == f.Families
}

// refreshScenario prepares refresh (or refresh-oidc, with openid):
// concurrency grants of one new user, one per worker.
func (t *benchTarget) refreshScenario(ctx context.Context, name, scope string) (*benchScenario, error) {
	cl, err := t.userGrantClient(ctx)
	if err != nil {
		return nil, err
	}
	u, err := t.newUser(ctx, name)
	if err != nil {
		return nil, err
	}
	gs, err := t.grants(ctx, u, scope, t.concurrency)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	steps := make([]*refreshStep, len(gs))
	for i, g := range gs {
		steps[i] = &refreshStep{sid: g.SID, token: []byte(g.Refresh)}
	}
	want := `"refresh_token"`
	if strings.Contains(" "+scope+" ", " openid ") {
		want = `"id_token"`
	}
	spec := loadgen.Spec{
		Name: name, Method: http.MethodPost, URL: t.publicURL + oauth.PathToken,
		Header: http.Header{
			"Authorization": {cl.basicAuth()},
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Accept":        {"application/json"},
		},
		Body:         []byte("grant_type=refresh_token"), // never sent: the step makes each body
		Status:       http.StatusOK,
		BodyContains: []byte(want),
		Stepper:      func(w int) loadgen.Step { return steps[w] },
	}
	check := func(ctx context.Context) (*familyCheck, error) {
		return t.checkFamilies(ctx, cl, u, steps)
	}
	return &benchScenario{spec: spec, check: check}, nil
}

// checkFamilies verifies the refresh workers' families after the load.
func (t *benchTarget) checkFamilies(ctx context.Context, cl *benchClient, u *benchUser, steps []*refreshStep) (*familyCheck, error) {
	fc := &familyCheck{Families: len(steps)}
	listed, err := t.sessions(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("check the refresh families: %w", err)
	}
	fc.ActiveSessions = len(listed)
	active := map[string]bool{}
	for _, id := range listed {
		active[id] = true
	}
	problem := func(format string, args ...any) {
		if fc.FirstProblem == "" {
			fc.FirstProblem = fmt.Sprintf(format, args...)
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, s := range steps {
		fc.Rotations += s.rotations
		g.Go(func() error {
			lost := false
			if !active[s.sid] {
				mu.Lock()
				fc.MissingSessions++
				problem("worker %d: its grant session %s is not listed as active", i, s.sid)
				mu.Unlock()
				lost = true
			}
			next, err := t.exchange(gctx, cl, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {string(s.token)}})
			mu.Lock()
			defer mu.Unlock()
			if err == nil && next.SID != s.sid {
				err = fmt.Errorf("the new access token has sid %s, not %s", next.SID, s.sid)
			}
			if err != nil {
				problem("worker %d: its last refresh token did not refresh: %v", i, err)
				lost = true
			} else {
				fc.FinalRefreshOK++
				s.token = []byte(next.Refresh)
			}
			if lost {
				fc.LostRotations++
			}
			return nil
		})
	}
	_ = g.Wait()
	if fc.ActiveSessions > fc.Families {
		problem("%d active grant sessions listed for %d workers", fc.ActiveSessions, fc.Families)
	}
	return fc, nil
}

// introspectScenario prepares introspect: a resource server introspects
// the access token of a user grant.
func (t *benchTarget) introspectScenario(ctx context.Context) (*benchScenario, error) {
	rs, err := t.resourceServer(ctx)
	if err != nil {
		return nil, err
	}
	u, err := t.newUser(ctx, scenarioIntrospect)
	if err != nil {
		return nil, err
	}
	g, err := t.grant(ctx, u, benchUserScope)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", scenarioIntrospect, err)
	}
	spec := loadgen.Spec{
		Name: scenarioIntrospect, Method: http.MethodPost, URL: t.publicURL + oauth.PathIntrospect,
		Header: http.Header{
			"Authorization": {rs.basicAuth()},
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Accept":        {"application/json"},
		},
		Body:         []byte(url.Values{"token": {g.Access}}.Encode()),
		Status:       http.StatusOK,
		BodyContains: []byte(`"active":true`),
	}
	return &benchScenario{spec: spec}, nil
}

// codeScenario prepares authorization_code: a signed-in browser's
// authorization request, then the code exchange, per iteration.
func (t *benchTarget) codeScenario(ctx context.Context) (*benchScenario, error) {
	cl, err := t.userGrantClient(ctx)
	if err != nil {
		return nil, err
	}
	u, err := t.newUser(ctx, "code")
	if err != nil {
		return nil, err
	}
	verifier, challenge := benchVerifier()
	steps := make([]*codeStep, t.concurrency)
	for i := range steps {
		steps[i] = newCodeStep(verifier)
	}
	spec := loadgen.Spec{
		Name: scenarioCode, Method: http.MethodGet, URL: t.authorizeURL(cl, benchUserScope, "bench-"+benchRandom(6), challenge),
		Header:  http.Header{"Cookie": {u.Cookie}, "Accept": {"text/html"}},
		Status:  http.StatusSeeOther,
		Capture: "Location",
		Then: []loadgen.Spec{{
			Method: http.MethodPost, URL: t.publicURL + oauth.PathToken,
			Header: http.Header{
				"Authorization": {cl.basicAuth()},
				"Content-Type":  {"application/x-www-form-urlencoded"},
				"Accept":        {"application/json"},
			},
			Status:       http.StatusOK,
			BodyContains: []byte(`"access_token"`),
		}},
		Stepper: func(w int) loadgen.Step { return steps[w] },
	}
	return &benchScenario{spec: spec, iteration: "code exchanges: GET " + oauth.PathAuthorize + " (303 with a code) + POST " + oauth.PathToken}, nil
}

// codeExchangeScenario prepares code_exchange: the token endpoint's
// authorization_code grant alone. Codes are single-use and live a minute,
// so the stock (t.codeStock per worker) is minted by prepare, just before
// the load; here only worker 0 gets one, for the trial request.
func (t *benchTarget) codeExchangeScenario(ctx context.Context, client loadgen.Client) (*benchScenario, error) {
	cl, err := t.userGrantClient(ctx)
	if err != nil {
		return nil, err
	}
	u, err := t.newUser(ctx, "exchange")
	if err != nil {
		return nil, err
	}
	verifier, challenge := benchVerifier()
	steps := make([]*exchangeStep, t.concurrency)
	for i := range steps {
		steps[i] = &exchangeStep{prefix: benchExchangePrefix(verifier)}
	}
	// The authorization request as codeScenario sends it.
	authorize := loadgen.Spec{
		Name: scenarioCodeExchange, Method: http.MethodGet, URL: t.authorizeURL(cl, benchUserScope, "bench-"+benchRandom(6), challenge),
		Header:  http.Header{"Cookie": {u.Cookie}, "Accept": {"text/html"}},
		Status:  http.StatusSeeOther,
		Capture: "Location",
	}
	if err := benchMintCodes(ctx, authorize, steps[:1], 1, client); err != nil {
		return nil, err
	}
	spec := loadgen.Spec{
		Name: scenarioCodeExchange, Method: http.MethodPost, URL: t.publicURL + oauth.PathToken,
		Header: http.Header{
			"Authorization": {cl.basicAuth()},
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Accept":        {"application/json"},
		},
		Body:         benchExchangePrefix(verifier), // without a code: sent only by a step that has none left
		Status:       http.StatusOK,
		BodyContains: []byte(`"refresh_token"`),
		Stepper:      func(w int) loadgen.Step { return steps[w] },
	}
	perWorker := t.codeStock
	prepare := func(ctx context.Context, client loadgen.Client, progress io.Writer) error {
		total := perWorker * len(steps)
		fmt.Fprintf(progress, "bench: %s: minting %d codes (%d per worker, %d workers, %s client)\n", scenarioCodeExchange, total, perWorker, len(steps), client)
		start := time.Now()
		if err := benchMintCodes(ctx, authorize, steps, perWorker, client); err != nil {
			return err
		}
		took := time.Since(start)
		fmt.Fprintf(progress, "bench: %s: minted %d codes in %.1fs (%.0f authorization requests/s, not part of the measurement)\n",
			scenarioCodeExchange, total, took.Seconds(), float64(total)/took.Seconds())
		if took > 30*time.Second {
			fmt.Fprintf(progress, "bench: %s: warning: the first codes are %.0fs old when the load starts and codes live 60s: a smaller --code-stock keeps them fresh\n",
				scenarioCodeExchange, took.Seconds())
		}
		return nil
	}
	return &benchScenario{
		spec: spec, prepare: prepare,
		iteration: "code exchanges: POST " + oauth.PathToken + " with a code minted before the load (the authorization requests are not measured)",
	}, nil
}

// benchMintCodes replaces the stock of each step with n codes from
// authorize requests (spec authorize, which answers 303 with a code), one
// goroutine per step as in the load, with the load's client.
func benchMintCodes(ctx context.Context, authorize loadgen.Spec, steps []*exchangeStep, n int, client loadgen.Client) error {
	var rt *http.Transport
	if client == loadgen.ClientNetHTTP {
		rt = loadgen.NewTransport(len(steps))
		defer rt.CloseIdleConnections()
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, st := range steps {
		st.codes, st.next = st.codes[:0], 0
		g.Go(func() error {
			spec := authorize
			spec.Stepper = func(int) loadgen.Step { return mintStep{into: st} }
			var s *loadgen.Sender
			var err error
			if rt == nil {
				s, err = loadgen.NewRawSender(gctx, spec, benchHTTP.Timeout)
			} else {
				s, err = loadgen.NewSender(gctx, spec, rt)
			}
			if err != nil {
				return err
			}
			defer s.Close()
			for range n {
				if err := s.Do(); err != nil {
					return fmt.Errorf("scenario %s: minting codes (%s client): %v", authorize.Name, client, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}
