package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// oauthdCmd returns the test binary set up to behave as the oauthd binary
// (see TestMain), in dir, with exactly env (plus PATH).
func oauthdCmd(t *testing.T, dir string, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = []string{"OAUTHD_TEST_MAIN=1", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// runOauthd runs one CLI command to completion.
func runOauthd(t *testing.T, dir string, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := oauthdCmd(t, dir, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"migrate", "--help"}, {"migrate", "up", "--help"}, {"migrate", "down", "--help"},
		{"migrate", "status", "--help"}, {"client", "--help"}, {"client", "create", "--help"}, {"client", "list", "--help"},
		{"client", "get", "--help"}, {"client", "delete", "--help"}, {"client", "rotate-secret", "--help"},
		{"user", "--help"}, {"user", "create", "--help"}, {"keys", "--help"}, {"keys", "list", "--help"}, {"keys", "rotate", "--help"}, {"bench", "--help"},
	} {
		out, errOut, code := runOauthd(t, t.TempDir(), nil, args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if _, errOut, code := runOauthd(t, t.TempDir(), nil, "frobnicate"); code != 1 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
}

// TestCLIClientCreateHelp: every client metadata member has a flag, and the
// help says what registering without --grant-type does.
func TestCLIClientCreateHelp(t *testing.T) {
	out, errOut, code := runOauthd(t, t.TempDir(), nil, "client", "create", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"--name", "--client-id", "--grant-type", "--scope", "--redirect-uri", "--post-logout-redirect-uri", "--audience",
		"--auth-method", "--skip-consent", "--allow-introspection", "--require-par", "require_pushed_authorization_requests",
		"authorization_code", "client_credentials",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("client create --help lacks %q:\n%s", want, out)
		}
	}
}

func TestCLIErrorsExitOneWithAClearMessage(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		want   []string
		forbid []string
	}{
		{
			name:   "unreachable PostgreSQL names the host, never the password",
			env:    map[string]string{"OAUTHD_DSN": "postgres://oauthd:s3cretpw@127.0.0.1:1/oauthd?connect_timeout=2"},
			args:   []string{"serve"},
			want:   []string{"127.0.0.1:1"},
			forbid: []string{"s3cretpw"},
		},
		{name: "invalid variable", env: map[string]string{"OAUTHD_ACCESS_TOKEN_TTL": "soon"}, args: []string{"serve"}, want: []string{"OAUTHD_ACCESS_TOKEN_TTL"}},
		{name: "commands need a migrated database", args: []string{"client", "list"}, want: []string{"migrate up"}},
		{name: "client create with an unknown auth method", args: []string{"client", "create", "--auth-method", "bogus"}, want: []string{"token_endpoint_auth_method"}},
		// RFC 7591: no --grant-type means authorization_code, which needs a redirect URI.
		{name: "client create without a grant type or redirect URI", args: []string{"client", "create", "--name", "x"}, want: []string{"invalid_redirect_uri", "redirect_uris"}},
		{name: "client create with an unsafe redirect URI", args: []string{"client", "create", "--redirect-uri", "http://app.example/cb"}, want: []string{"invalid_redirect_uri", "loopback"}},
		{name: "client create with an unsafe post-logout redirect URI", args: []string{"client", "create", "--redirect-uri", "https://app.example/cb", "--post-logout-redirect-uri", "javascript:alert(1)"}, want: []string{"invalid_redirect_uri", "post_logout_redirect_uris"}},
		{name: "client create with a flag value", args: []string{"client", "create", "--redirect-uri", "https://app.example/cb", "--require-par=maybe"}, want: []string{"require-par"}},
		{name: "wrong argument count", args: []string{"client", "get"}, want: []string{"arg"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if strings.HasPrefix(tc.name, "client create") {
				if _, e, code := runOauthd(t, dir, nil, "migrate", "up"); code != 0 {
					t.Fatalf("migrate up: %s", e)
				}
			}
			out, errOut, code := runOauthd(t, dir, tc.env, tc.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1 (stdout %q, stderr %q)", code, out, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "oauthd: ") {
				t.Errorf("last stderr line %q does not start with oauthd:", last)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			for _, f := range tc.forbid {
				if strings.Contains(errOut+out, f) {
					t.Errorf("output leaks %q: %s", f, errOut)
				}
			}
		})
	}
}

func TestCLIClientAndKeyCommands(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		dir := t.TempDir()
		env := map[string]string{"OAUTHD_DSN": b.NewDSN(t)}
		mustRun := func(args ...string) string {
			t.Helper()
			out, errOut, code := runOauthd(t, dir, env, args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, errOut)
			}
			return out
		}
		out := mustRun("migrate", "up")
		if !strings.Contains(out, "applied 00001") {
			t.Errorf("migrate up: %q", out)
		}
		if out := mustRun("migrate", "up"); !strings.Contains(out, "up to date") {
			t.Errorf("second migrate up: %q", out)
		}
		if out := mustRun("migrate", "status"); !regexp.MustCompile(`00001\s+applied`).MatchString(out) {
			t.Errorf("status: %q", out)
		}

		out = mustRun("client", "create", "--name", "billing", "--grant-type", "client_credentials", "--scope", "invoices:read")
		id := regexp.MustCompile(`client_id:\s+(\S+)`).FindStringSubmatch(out)
		sec := regexp.MustCompile(`client_secret:\s+(\S+)`).FindStringSubmatch(out)
		if id == nil || sec == nil || len(sec[1]) < 43 {
			t.Fatalf("client create output: %q", out)
		}
		if out := mustRun("client", "list"); !strings.Contains(out, id[1]) || !strings.Contains(out, "billing") {
			t.Errorf("list: %q", out)
		}
		if out := mustRun("client", "get", id[1]); !strings.Contains(out, `"scope": "invoices:read"`) || strings.Contains(out, sec[1]) {
			t.Errorf("get: %q", out)
		}
		if _, errOut, code := runOauthd(t, dir, env, "client", "get", "nope"); code != 1 || !strings.Contains(errOut, "no client") {
			t.Errorf("get unknown: %d %q", code, errOut)
		}
		if _, errOut, code := runOauthd(t, dir, env, "client", "create", "--name", "x", "--grant-type", "password"); code != 1 || !strings.Contains(errOut, "invalid_client_metadata") {
			t.Errorf("bad grant: %d %q", code, errOut)
		}
		// An authorization-code client with every flag, as JSON.
		out = mustRun("client", "create", "--json", "--name", "web", "--grant-type", "authorization_code", "--grant-type", "refresh_token",
			"--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.1/cb",
			"--post-logout-redirect-uri", "https://app.example/bye", "--scope", "openid offline_access",
			"--skip-consent", "--allow-introspection", "--require-par")
		var web struct {
			ClientID               string   `json:"client_id"`
			ClientSecret           string   `json:"client_secret"`
			GrantTypes             []string `json:"grant_types"`
			ResponseTypes          []string `json:"response_types"`
			RedirectURIs           []string `json:"redirect_uris"`
			PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
			SkipConsent            *bool    `json:"skip_consent"`
			AllowIntrospection     *bool    `json:"allow_introspection"`
			RequirePAR             *bool    `json:"require_pushed_authorization_requests"`
		}
		if err := json.Unmarshal([]byte(out), &web); err != nil {
			t.Fatalf("client create --json: %v: %q", err, out)
		}
		if web.ClientID == "" || web.ClientSecret == "" ||
			!slices.Equal(web.GrantTypes, []string{"authorization_code", "refresh_token"}) || !slices.Equal(web.ResponseTypes, []string{"code"}) ||
			!slices.Equal(web.RedirectURIs, []string{"https://app.example/cb", "http://127.0.0.1/cb"}) ||
			!slices.Equal(web.PostLogoutRedirectURIs, []string{"https://app.example/bye"}) ||
			web.SkipConsent == nil || !*web.SkipConsent || web.AllowIntrospection == nil || !*web.AllowIntrospection || web.RequirePAR == nil || !*web.RequirePAR {
			t.Errorf("client create with every flag: %s", out)
		}
		if out := mustRun("client", "get", web.ClientID); !strings.Contains(out, `"require_pushed_authorization_requests": true`) ||
			!strings.Contains(out, `"skip_consent": true`) || !strings.Contains(out, `"allow_introspection": true`) ||
			!strings.Contains(out, `"https://app.example/bye"`) || strings.Contains(out, web.ClientSecret) {
			t.Errorf("get of the authorization-code client: %q", out)
		}
		// Without the flags: all false; without --grant-type: authorization_code (RFC 7591).
		out = mustRun("client", "create", "--json", "--auth-method", "none", "--redirect-uri", "com.example.app:/cb")
		var public map[string]any
		if err := json.Unmarshal([]byte(out), &public); err != nil {
			t.Fatalf("client create --json: %v: %q", err, out)
		}
		if g, _ := public["grant_types"].([]any); len(g) != 1 || g[0] != "authorization_code" || public["client_secret"] != nil ||
			public["skip_consent"] != false || public["allow_introspection"] != false || public["require_pushed_authorization_requests"] != false {
			t.Errorf("public client with defaults: %s", out)
		}
		// The text output of a public client has no secret line.
		out = mustRun("client", "create", "--auth-method", "none", "--redirect-uri", "http://127.0.0.1/cb")
		if !regexp.MustCompile(`client_id:\s+\S+`).MatchString(out) || strings.Contains(out, "client_secret") {
			t.Errorf("public client create output: %q", out)
		}

		if out := mustRun("client", "rotate-secret", id[1]); strings.Contains(out, sec[1]) || !strings.Contains(out, "client_secret:") {
			t.Errorf("rotate-secret: %q", out)
		}
		mustRun("client", "delete", id[1])
		if out := mustRun("client", "list"); strings.Contains(out, id[1]) {
			t.Errorf("deleted client still listed: %q", out)
		}

		// Keys: the first keys come with serve; before it, keys rotate creates
		// keys that sign at once (a server must never start without one).
		if out := mustRun("keys", "rotate"); strings.Count(out, "new ") != 2 {
			t.Errorf("keys rotate: %q", out)
		}
		if out := mustRun("keys", "list"); strings.Count(out, "active") != 2 || strings.Contains(out, "pending") {
			t.Errorf("keys list after the first rotation: %q", out)
		}
		mustRun("keys", "rotate")
		out = mustRun("keys", "list")
		if !strings.Contains(out, "ES256") || !strings.Contains(out, "RS256") || !strings.Contains(out, "pending") {
			t.Errorf("keys list: %q", out)
		}
		if out := mustRun("keys", "rotate", "--immediate"); !strings.Contains(out, "ES256") {
			t.Errorf("keys rotate --immediate: %q", out)
		}
		if out := mustRun("keys", "list"); !strings.Contains(out, "active") {
			t.Errorf("keys list after immediate rotation: %q", out)
		}

		if out := mustRun("migrate", "down", "--all"); !strings.Contains(out, "rolled back 00001") {
			t.Errorf("down --all: %q", out)
		}
		if out := mustRun("migrate", "down"); !strings.Contains(out, "nothing to roll back") {
			t.Errorf("down on empty: %q", out)
		}
		mustRun("migrate", "up")
	})
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeAsAFirstTimeUser follows README.md: start `oauthd serve` with no
// configuration but ports, create a client with the CLI beside it, get a
// token, then stop the server with SIGTERM and expect a clean exit.
func TestServeAsAFirstTimeUser(t *testing.T) {
	dir := t.TempDir()
	pub, adm := freePort(t), freePort(t)
	env := map[string]string{"OAUTHD_ADDR": pub, "OAUTHD_ADMIN_ADDR": adm, "OAUTHD_ISSUER": "http://" + pub}
	cmd := oauthdCmd(t, dir, env, "serve")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	banner := make(chan string, 1)
	go func() {
		var seen strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "grant_type=client_credentials") {
				banner <- seen.String()
			}
		}
	}()
	var text string
	select {
	case text = <-banner:
	case <-time.After(60 * time.Second):
		t.Fatal("no start-up banner within 60s")
	}
	if !strings.Contains(text, filepath.Join("data", "admin-token")) || !strings.Contains(text, "/admin/clients") {
		t.Errorf("banner does not say where the admin token is and how to create a client:\n%s", text)
	}
	for _, f := range []string{"data/oauthd.db", "data/secret", "data/admin-token"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("%s missing: %v", f, err)
			continue
		}
		if f != "data/oauthd.db" && st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}

	// The banner's one-line first token, run as printed (when curl and sed exist).
	var oneLiner string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "curl -s -u") {
			oneLiner = strings.TrimSpace(line)
		}
	}
	if oneLiner == "" {
		t.Errorf("banner has no one-line first token:\n%s", text)
	} else if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not installed: the banner's one-liner is not run")
	} else {
		sh := exec.Command("bash", "-c", oneLiner)
		sh.Dir = dir
		got, err := sh.CombinedOutput()
		if err != nil || !strings.Contains(string(got), `"access_token":"ey`) || !strings.Contains(string(got), `"token_type":"Bearer"`) {
			t.Errorf("banner one-liner: %v: %s", err, got)
		}
	}

	out, errOut, code := runOauthd(t, dir, nil, "client", "create", "--name", "billing", "--grant-type", "client_credentials", "--scope", "invoices:read")
	if code != 0 {
		t.Fatalf("client create beside the server: %s", errOut)
	}
	id := regexp.MustCompile(`client_id:\s+(\S+)`).FindStringSubmatch(out)[1]
	sec := regexp.MustCompile(`client_secret:\s+(\S+)`).FindStringSubmatch(out)[1]
	tok, err := (&clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: "http://" + pub + "/oauth2/token", Scopes: []string{"invoices:read"}}).Token(context.Background())
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatal("empty token")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30s of SIGTERM")
	}
	if _, err := http.Get("http://" + pub + "/health/alive"); err == nil {
		t.Error("still answering after exit")
	}
	_ = fmt.Sprint()
}
