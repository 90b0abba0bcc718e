package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func loadWith(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return loadConfig(fs, envMap(env))
}

func TestConfigDefaultsMatchTheContract(t *testing.T) {
	c, err := loadWith(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Issuer: "http://localhost:8080", Addr: ":8080", AdminAddr: "127.0.0.1:8081", DSN: "sqlite://./data/oauthd.db",
		AccessTokenTTL: 10 * time.Minute, RefreshTokenTTL: 720 * time.Hour, RefreshReuseWindow: 10 * time.Second,
	}
	got := Config{Issuer: c.Issuer, Addr: c.Addr, AdminAddr: c.AdminAddr, DSN: c.DSN, AccessTokenTTL: c.AccessTokenTTL,
		RefreshTokenTTL: c.RefreshTokenTTL, RefreshReuseWindow: c.RefreshReuseWindow}
	if got != want {
		t.Errorf("defaults\n got %+v\nwant %+v", got, want)
	}
	if c.AdminToken != "" || c.Secret != "" {
		t.Error("admin token and secret must default to generated (empty here)")
	}
	if c.AccessTokenAlg != "ES256" || c.IDTokenAlg != "RS256" || c.KeyRotation != 720*time.Hour || c.KeyPrePublish != time.Hour || !c.Migrate {
		t.Errorf("key/migrate defaults: %+v", c)
	}
}

func TestConfigPrecedenceFlagOverEnvOverFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "oauthd.yaml")
	if err := os.WriteFile(file, []byte("issuer: https://file.example\naddr: \":9000\"\naccess_token_ttl: 5m\nlog_format: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OAUTHD_CONFIG": file, "OAUTHD_ADDR": ":9100", "OAUTHD_ACCESS_TOKEN_TTL": "6m"}
	c, err := loadWith(t, env, "--access-token-ttl", "7m")
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://file.example" {
		t.Errorf("file value lost: issuer %q", c.Issuer)
	}
	if c.Addr != ":9100" {
		t.Errorf("env must beat file: addr %q", c.Addr)
	}
	if c.AccessTokenTTL != 7*time.Minute {
		t.Errorf("flag must beat env: ttl %s", c.AccessTokenTTL)
	}
	if c.LogFormat != "json" {
		t.Errorf("file log_format lost: %q", c.LogFormat)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("issuer: https://x\nno_such_setting: 1\n"), 0o600)
	nested := filepath.Join(dir, "nested.yaml")
	_ = os.WriteFile(nested, []byte("issuer:\n  a: b\n"), 0o600)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"bad duration", map[string]string{"OAUTHD_ACCESS_TOKEN_TTL": "ten minutes"}, nil, []string{"OAUTHD_ACCESS_TOKEN_TTL", "ten minutes"}},
		{"bad duration flag", nil, []string{"--refresh-reuse-window", "x"}, []string{"OAUTHD_REFRESH_REUSE_WINDOW", "--refresh-reuse-window"}},
		{"negative window", map[string]string{"OAUTHD_REFRESH_REUSE_WINDOW": "-1s"}, nil, []string{"OAUTHD_REFRESH_REUSE_WINDOW"}},
		{"bad DSN", map[string]string{"OAUTHD_DSN": "mysql://x"}, nil, []string{"OAUTHD_DSN"}},
		{"short secret", map[string]string{"OAUTHD_SECRET": "short"}, nil, []string{"OAUTHD_SECRET", "32"}},
		{"short admin token", map[string]string{"OAUTHD_ADMIN_TOKEN": "abc"}, nil, []string{"OAUTHD_ADMIN_TOKEN"}},
		{"bad alg", map[string]string{"OAUTHD_ACCESS_TOKEN_ALG": "HS256"}, nil, []string{"OAUTHD_ACCESS_TOKEN_ALG"}},
		{"bad log format", map[string]string{"OAUTHD_LOG_FORMAT": "xml"}, nil, []string{"OAUTHD_LOG_FORMAT"}},
		{"bad bool", map[string]string{"OAUTHD_MIGRATE": "maybe"}, nil, []string{"OAUTHD_MIGRATE"}},
		{"same listeners", map[string]string{"OAUTHD_ADMIN_ADDR": ":8080"}, nil, []string{"OAUTHD_ADMIN_ADDR"}},
		{"rotation shorter than prepublish", map[string]string{"OAUTHD_KEY_ROTATION_INTERVAL": "30m"}, nil, []string{"OAUTHD_KEY_ROTATION_INTERVAL"}},
		{"unknown file setting", map[string]string{"OAUTHD_CONFIG": bad}, nil, []string{"no_such_setting"}},
		{"nested file setting", map[string]string{"OAUTHD_CONFIG": nested}, nil, []string{"issuer"}},
		{"missing file", map[string]string{"OAUTHD_CONFIG": filepath.Join(dir, "nope.yaml")}, nil, []string{"OAUTHD_CONFIG"}},
		{"several problems at once", map[string]string{"OAUTHD_ACCESS_TOKEN_TTL": "x", "OAUTHD_LOG_LEVEL": "loud"}, nil, []string{"OAUTHD_ACCESS_TOKEN_TTL", "OAUTHD_LOG_LEVEL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(t, tc.env, tc.args...)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("secrets are not echoed", func(t *testing.T) {
		_, err := loadWith(t, map[string]string{"OAUTHD_SECRET": "tooshort-but-secret", "OAUTHD_DSN": "postgres://u:pa55word@/db"})
		if err == nil || strings.Contains(err.Error(), "tooshort-but-secret") || strings.Contains(err.Error(), "pa55word") {
			t.Errorf("error echoes a secret: %v", err)
		}
	})
}
