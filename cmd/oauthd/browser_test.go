package main

// The sign-in as a person does it: a real headless Chromium (Debian's
// chromium package, driven over the DevTools protocol by chromedp) goes
// through the login and consent pages to a client's callback, then ends the
// app's session on the account page.
//
// Chromium is found through OAUTHD_TEST_CHROMIUM (a path; scripts/test.sh
// sets it) or as `chromium` on PATH. Without one the test skips, unless
// OAUTHD_TEST_REQUIRE_BROWSER=1 (CI), where it fails. Screenshots of every
// page go to a temporary directory that is kept when the test fails (its
// path is logged) and removed when it passes; OAUTHD_TEST_SCREENSHOTS=DIR
// keeps them in DIR/<test name>/ in any case.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// browserTimeout bounds one backend's whole browser run, Chromium's start
// included (CI is slow, and runs with -race).
const browserTimeout = 60 * time.Second

// stepTimeout bounds one step of the flow (a page and what is done on it).
const stepTimeout = 20 * time.Second

const browserClientName = "Browser Demo App"

// chromiumPath finds the browser, or skips (fails under
// OAUTHD_TEST_REQUIRE_BROWSER=1) when there is none.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OAUTHD_TEST_CHROMIUM"); p != "" {
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			t.Fatalf("OAUTHD_TEST_CHROMIUM=%s is not an executable file (%v)", p, err)
		}
		return p
	}
	p, err := exec.LookPath("chromium")
	if err == nil {
		return p
	}
	const msg = "no browser: OAUTHD_TEST_CHROMIUM is unset and `chromium` is not on PATH " +
		"(install Debian's chromium package, or run the tests with `make test` or scripts/test.sh, which install it)"
	if os.Getenv("OAUTHD_TEST_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "; OAUTHD_TEST_REQUIRE_BROWSER=1 makes this a failure")
	}
	t.Skip(msg + "; skipping the browser test")
	return ""
}

// screenshotDir is where the test's screenshots go: kept when the test fails,
// removed when it passes, kept in any case under OAUTHD_TEST_SCREENSHOTS.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if base := os.Getenv("OAUTHD_TEST_SCREENSHOTS"); base != "" {
		dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshots in %s", dir)
		return dir
	}
	dir, err := os.MkdirTemp("", "oauthd-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	t.Logf("screenshots in %s (kept if the test fails)", dir)
	return dir
}

// consoleLog collects what the pages write to the console (including the
// browser's own messages, such as CSP violations).
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func (c *consoleLog) add(m chromedp.ConsoleMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
}

func (c *consoleLog) all() []chromedp.ConsoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), c.msgs...)
}

// startBrowser starts a headless Chromium with its own profile and returns a
// tab's context (which ends after browserTimeout) and the console log. The
// browser is stopped, and its output logged if the test failed, at cleanup.
func startBrowser(t *testing.T, exe string) (context.Context, *consoleLog) {
	t.Helper()
	out := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium-profile")),
		chromedp.WindowSize(1024, 768),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx)
	// Runs before t.TempDir's removal (registered earlier), so the profile
	// is no longer in use when it goes.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to end
		cancelTimeout()
		if t.Failed() {
			t.Logf("chromium output (without its D-Bus complaints):\n%s", withoutDBus(out.String()))
		}
	})
	start := time.Now()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", exe, err) // the cleanup logs its output
	}
	version, err := chromedp.Run(bctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	t.Logf("%s started in %v: %s", exe, time.Since(start).Round(time.Millisecond), version)

	console := &consoleLog{}
	msgs := chromedp.Console(bctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			console.add(m)
		}
	}()
	return bctx, console
}

// callbackResult is what the client's callback saw.
type callbackResult struct {
	tok *oauth2.Token
	err error
}

// browserClient is a relying party on loopback: its /callback checks the
// authorization response, exchanges the code (PKCE) and shows "signed in".
type browserClient struct {
	srv      *httptest.Server
	cfg      *oauth2.Config
	client   registeredClient
	state    string
	verifier string
	results  chan callbackResult
}

func newBrowserClient(t *testing.T, f *signInFixture) *browserClient {
	t.Helper()
	bc := &browserClient{
		state:    "state-" + oauth2.GenerateVerifier()[:16],
		verifier: oauth2.GenerateVerifier(),
		results:  make(chan callbackResult, 4),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/callback", bc.callback(f.ts.PublicURL))
	bc.srv = httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(bc.srv.Close)
	redirect := bc.srv.URL + "/callback"
	bc.client = f.ts.createClient(map[string]any{
		"client_name":    browserClientName,
		"redirect_uris":  []string{redirect},
		"grant_types":    []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"},
		"scope":          "openid profile offline_access",
	})
	// The registered method (client_secret_basic) only: with auto-detection
	// x/oauth2 would retry a refused request with the secret in the body and
	// report that retry's error.
	endpoint := f.provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	bc.cfg = &oauth2.Config{
		ClientID:     bc.client.ID,
		ClientSecret: bc.client.Secret,
		Endpoint:     endpoint,
		RedirectURL:  redirect,
		Scopes:       []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess},
	}
	return bc
}

func (bc *browserClient) authURL() string {
	return bc.cfg.AuthCodeURL(bc.state, oauth2.S256ChallengeOption(bc.verifier), oidc.Nonce("nonce-"+bc.state))
}

func (bc *browserClient) callback(issuer string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res callbackResult
		switch {
		case q.Get("error") != "":
			res.err = fmt.Errorf("authorization error %q: %s", q.Get("error"), q.Get("error_description"))
		case q.Get("state") != bc.state:
			res.err = fmt.Errorf("state %q, want %q", q.Get("state"), bc.state)
		case q.Get("iss") != issuer:
			res.err = fmt.Errorf("iss %q, want %q", q.Get("iss"), issuer)
		case q.Get("code") == "":
			res.err = errors.New("no code")
		default:
			res.tok, res.err = bc.cfg.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(bc.verifier))
			if res.err != nil {
				res.err = fmt.Errorf("code exchange: %w", res.err)
				break
			}
			if res.tok.RefreshToken == "" {
				res.err = errors.New("no refresh token despite offline_access")
			} else if _, ok := res.tok.Extra("id_token").(string); !ok {
				res.err = errors.New("no ID token")
			}
		}
		select {
		case bc.results <- res:
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if res.err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, `<!doctype html><title>Sign-in failed</title><h1 id="callback-result">sign-in failed</h1><p>%s</p>`,
				html.EscapeString(res.err.Error()))
			return
		}
		scope, _ := res.tok.Extra("scope").(string)
		fmt.Fprintf(w, `<!doctype html><title>%s</title><h1 id="callback-result">signed in</h1>`+
			`<p>%s got an access token (scope %s), an ID token and a refresh token.</p>`,
			browserClientName, browserClientName, html.EscapeString(`"`+scope+`"`))
	}
}

// waitLoaded waits until the document has loaded (stylesheets included), so
// a screenshot shows the page as a person sees it. It polls through
// Runtime.evaluate, which the pages' CSP does not restrict.
func waitLoaded() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			state, err := chromedp.Evaluate[string](`document.readyState`)(ctx, tg)
			if err == nil && state == "complete" {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("document not loaded (state %q, %v): %w", state, err, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

func TestBrowserSignIn(t *testing.T) {
	exe := chromiumPath(t)
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		f := newSignInFixture(t, b, nil, nil)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server log (last lines):\n%s", lastLines(f.ts.Logs.String(), 40))
			}
		})
		bc := newBrowserClient(t, f)
		shots := screenshotDir(t)
		bctx, console := startBrowser(t, exe)
		begin := time.Now()
		issuer, _ := url.Parse(f.ts.PublicURL)

		shotN := 0
		shot := func(name string) chromedp.Action[chromedp.Void] {
			return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				if _, err := waitLoaded()(ctx, tg); err != nil {
					return err
				}
				png, err := chromedp.FullScreenshot(100)(ctx, tg) // quality 100: PNG
				if err != nil {
					return fmt.Errorf("screenshot %s: %w", name, err)
				}
				shotN++
				return os.WriteFile(filepath.Join(shots, fmt.Sprintf("%d-%s.png", shotN, name)), png, 0o644)
			})
		}
		location := func() *url.URL {
			t.Helper()
			loc, err := chromedp.Run(bctx, chromedp.Location())
			if err != nil {
				t.Fatalf("location: %v", err)
			}
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		// step runs the actions of one step; on failure it takes a
		// screenshot of wherever the browser is and stops the test.
		// Each step gets at most stepTimeout of the run's time, so that a
		// failed one leaves time for a screenshot of where it stopped.
		step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
			t.Helper()
			sctx, cancel := context.WithTimeout(bctx, stepTimeout)
			defer cancel()
			for i, a := range actions {
				if _, err := chromedp.Run(sctx, a); err != nil {
					loc, _ := chromedp.Run(bctx, chromedp.Location())
					text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
					_ = chromedp.Do(bctx, shot("FAILED-"+strings.ReplaceAll(name, " ", "-")))
					t.Fatalf("%s, action %d: %v after %v\nbrowser at %s showing:\n%s",
						name, i+1, err, time.Since(begin).Round(time.Millisecond), loc, text)
				}
			}
			t.Logf("%s: done after %v", name, time.Since(begin).Round(time.Millisecond))
		}
		mainText := func() string {
			t.Helper()
			s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
			if err != nil {
				t.Fatalf("text of <main>: %v", err)
			}
			return s
		}

		// 1. The app sends the person to the authorization endpoint: the
		// login page.
		step("open the authorization URL",
			chromedp.Navigate(bc.authURL()),
			chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
			chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)),
			shot("login"),
		)
		if u := location(); u.Host != issuer.Host || u.Path != "/login" {
			t.Errorf("login page at %s, want %s/login", u, f.ts.PublicURL)
		}

		// 2. Sign in: type, click the button.
		step("sign in",
			chromedp.SendKeys(chromedp.CSS(`input[name=username]`), testUsername),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), testPassword),
			chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=allow]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=deny]`)),
			shot("consent"),
		)
		if u := location(); u.Host != issuer.Host {
			t.Errorf("consent page at %s, want it on %s", u, f.ts.PublicURL)
		}
		if s := mainText(); !strings.Contains(s, browserClientName) {
			t.Errorf("consent page does not name the app %q: %q", browserClientName, s)
		}

		// 3. Allow: the browser lands on the app's callback, which has
		// exchanged the code.
		step("allow",
			chromedp.Click(chromedp.CSS(`button[name=decision][value=allow]`)),
			chromedp.WaitVisible(chromedp.CSS(`#callback-result`)),
			shot("callback"),
		)
		var tok *oauth2.Token
		select {
		case res := <-bc.results:
			if res.err != nil {
				t.Fatalf("callback: %v", res.err)
			}
			tok = res.tok
		case <-bctx.Done():
			t.Fatal("the callback was never called")
		}
		if u := location(); !strings.HasPrefix(u.String(), bc.cfg.RedirectURL+"?") {
			t.Errorf("browser at %s, want the callback %s", u, bc.cfg.RedirectURL)
		}
		if s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#callback-result`))); err != nil || s != "signed in" {
			t.Errorf("callback page says %q (%v), want %q", s, err, "signed in")
		}

		// The refresh token works (and rotates) while the session lives.
		ctx := bctx
		expired := *tok
		expired.Expiry = time.Now().Add(-time.Hour)
		tok2, err := bc.cfg.TokenSource(ctx, &expired).Token()
		if err != nil {
			t.Fatalf("refresh before the revocation: %v", err)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh did not rotate the refresh token")
		}

		// 4. The account page lists the app's session.
		revokeButton := chromedp.CSS(`form[action$="/account/sessions/revoke"] button[type=submit]`)
		step("open the account page",
			chromedp.Navigate(f.ts.PublicURL+"/account/sessions"),
			chromedp.WaitVisible(revokeButton),
			shot("account-before"),
		)
		if u := location(); u.Host != issuer.Host || u.Path != "/account/sessions" {
			t.Errorf("account page at %s, want %s/account/sessions", u, f.ts.PublicURL)
		}
		if s := mainText(); !strings.Contains(s, browserClientName) || !strings.Contains(s, testUsername) {
			t.Errorf("account page does not show the user %q and the app %q: %q", testUsername, browserClientName, s)
		}
		forms, err := chromedp.Run(bctx, chromedp.Evaluate[int](
			`document.querySelectorAll('form[action$="/account/sessions/revoke"]').length`))
		if err != nil || forms != 1 {
			t.Errorf("account page has %d session(s) (%v), want 1", forms, err)
		}

		// 5. Revoke it: the page then shows no session, and the browser
		// stays signed in.
		step("revoke the session",
			chromedp.Click(revokeButton),
			chromedp.WaitNotPresent(chromedp.CSS(`form[action$="/account/sessions/revoke"]`)),
			chromedp.WaitVisible(chromedp.CSS(`main`)),
			shot("account-after"),
		)
		if u := location(); u.Host != issuer.Host || u.Path != "/account/sessions" {
			t.Errorf("after revoking, browser at %s, want %s/account/sessions", u, f.ts.PublicURL)
		}
		if s := mainText(); strings.Contains(s, browserClientName) || !strings.Contains(s, testUsername) {
			t.Errorf("after revoking, the account page should show %q signed in with no app %q: %q", testUsername, browserClientName, s)
		}

		// 6. The app's refresh now fails with invalid_grant, and its access
		// tokens introspect inactive.
		expired2 := *tok2
		expired2.Expiry = time.Now().Add(-time.Hour)
		_, err = bc.cfg.TokenSource(ctx, &expired2).Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("refresh after the revocation: %v, want invalid_grant", err)
		}
		for _, at := range []string{tok.AccessToken, tok2.AccessToken} {
			if active := introspectAs(t, f.ts, bc.client, at); active {
				t.Error("an access token of the revoked session still introspects active")
			}
		}

		// No page broke its own Content-Security-Policy or logged an error.
		for _, m := range console.all() {
			switch {
			case strings.Contains(strings.ToLower(m.Text), "content security policy") || m.Source == "security":
				t.Errorf("CSP violation in the browser: %s (at %s)", m.Text, m.URL)
			case (m.Type == chromedp.ConsoleError || m.IsException()) && strings.HasPrefix(m.URL, f.ts.PublicURL):
				t.Errorf("console error on a page of the server: %s (at %s)", m.Text, m.URL)
			default:
				t.Logf("console: %s %s [%s] %s", m.Type, m.Source, m.URL, m.Text)
			}
		}
		t.Logf("browser flow took %v", time.Since(begin).Round(time.Millisecond))
	})
}

// introspectAs asks /oauth2/introspect, authenticated as c, whether token is
// active.
func introspectAs(t *testing.T, ts *testServer, c registeredClient, token string) bool {
	t.Helper()
	resp := ts.postForm("/oauth2/introspect", url.Values{"token": {token}}.Encode(), c.ID, c.Secret)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %s", resp.StatusCode, body)
	}
	var r struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("introspect: %v: %s", err, body)
	}
	return r.Active
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// withoutDBus drops the lines in which Chromium complains that there is no
// D-Bus (there is none in a container; it does not matter headless).
func withoutDBus(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, ":ERROR:dbus/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
