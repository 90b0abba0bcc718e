package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/oauthd/oauthd/storage/storagetest"
)

func TestAdminCreateUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ts := startServer(t, b.NewDSN(t), nil)
		status, body := ts.adminDo(http.MethodPost, "/admin/users", map[string]any{"username": "Alice", "password": "correct horse battery", "email": "alice@example.com", "name": "Alice"})
		if status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, body)
		}
		var u struct{ ID, Username string }
		if err := json.Unmarshal(body, &u); err != nil || u.ID == "" || u.Username != "alice" {
			t.Fatalf("answer %s", body)
		}
		if strings.Contains(string(body), "correct horse") || strings.Contains(string(body), "argon2") {
			t.Errorf("answer shows the password or its hash: %s", body)
		}
		tests := []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"same username, other case", map[string]any{"username": "ALICE", "password": "another password"}, 409, "username_taken"},
			{"short password", map[string]any{"username": "bob", "password": "short"}, 400, "invalid_request"},
			{"no username", map[string]any{"password": "long enough pw"}, 400, "invalid_request"},
			{"invisible character", map[string]any{"username": "b\u200bob", "password": "long enough pw"}, 400, "invalid_request"},
			{"wrong types", map[string]any{"username": 5, "password": "long enough pw"}, 400, "invalid_client_metadata"},
			{"second user", map[string]any{"username": "bob", "password": "long enough pw"}, 201, ""},
		}
		for _, tc := range tests {
			status, body := ts.adminDo(http.MethodPost, "/admin/users", tc.body)
			if status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
				continue
			}
			if tc.code != "" && !strings.Contains(string(body), `"error":"`+tc.code+`"`) {
				t.Errorf("%s: %s, want error %s", tc.name, body, tc.code)
			}
		}
		if status, _ := ts.adminDo(http.MethodGet, "/admin/users", nil); status != http.StatusMethodNotAllowed {
			t.Errorf("GET /admin/users: %d, want 405", status)
		}
		ts.Stop()
		if strings.Contains(ts.Logs.String(), "correct horse") {
			t.Error("a password reached the logs")
		}
	})
}

func TestCLIUserCreate(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"OAUTHD_PASSWORD_HASH_MEMORY": "8192", "OAUTHD_PASSWORD_HASH_ITERATIONS": "1", "OAUTHD_PASSWORD_HASH_PARALLELISM": "1"}
	if _, e, code := runOauthd(t, dir, env, "migrate", "up"); code != 0 {
		t.Fatal(e)
	}
	withStdin := func(stdin string, args ...string) (string, string, int) {
		cmd := oauthdCmd(t, dir, env, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		code := 0
		if err := cmd.Run(); err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return out.String(), errb.String(), code
	}
	out, errOut, code := withStdin("correct horse battery\n", "user", "create", "--username", "Alice", "--email", "a@example.com", "--password-stdin")
	if code != 0 || !regexp.MustCompile(`id:\s+u_\S{22}\nusername: alice\n`).MatchString(out) {
		t.Fatalf("user create: exit %d, %q, %q", code, out, errOut)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"duplicate", "another password\n", []string{"--username", "ALICE", "--password-stdin"}, "already exists"},
		{"no password on stdin", "", []string{"--username", "bob", "--password-stdin"}, "no password"},
		{"weak password", "short\n", []string{"--username", "bob", "--password-stdin"}, "at least 8"},
		{"no terminal and no --password-stdin", "correct horse battery\n", []string{"--username", "bob"}, "not a terminal"},
		{"no username", "correct horse battery\n", []string{"--password-stdin"}, "--username"},
	} {
		_, errOut, code := withStdin(tc.stdin, append([]string{"user", "create"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, %q; want 1 and %q", tc.name, code, errOut, tc.want)
		}
	}
}
