package keys

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	want := Config{
		AccessTokenAlg: ES256,
		IDTokenAlg:     RS256,
		PrePublish:     time.Hour,
		RetireAfter:    2 * time.Hour,
		ReloadInterval: 10 * time.Second,
		JWKSMaxAge:     5 * time.Minute,
	}
	if c != want {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	// Explicit values survive.
	set := Config{AccessTokenAlg: EdDSA, IDTokenAlg: ES256, RotationInterval: 48 * time.Hour, PrePublish: 2 * time.Hour,
		RetireAfter: 3 * time.Hour, ReloadInterval: time.Second, JWKSMaxAge: time.Minute}
	if got := set.WithDefaults(); got != set {
		t.Fatalf("WithDefaults changed explicit values: %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{RotationInterval: 720 * time.Hour}.WithDefaults()
	tests := []struct {
		name    string
		mut     func(*Config)
		wantErr string // "" = valid
	}{
		{"defaults with rotation", func(*Config) {}, ""},
		{"rotation disabled", func(c *Config) { c.RotationInterval = 0 }, ""},
		{"rotation disabled still bounds max-age (manual rotations pre-publish too)", func(c *Config) { c.RotationInterval = 0; c.JWKSMaxAge = 10 * time.Hour }, "JWKS max-age"},
		{"no pre-publication with no JWKS caching", func(c *Config) { c.PrePublish, c.JWKSMaxAge = 0, 0 }, ""},
		{"EdDSA for both", func(c *Config) { c.AccessTokenAlg, c.IDTokenAlg = EdDSA, EdDSA }, ""},
		{"RS256 access", func(c *Config) { c.AccessTokenAlg = RS256 }, ""},
		{"HS256 access", func(c *Config) { c.AccessTokenAlg = "HS256" }, `unsupported signing algorithm "HS256"`},
		{"none id", func(c *Config) { c.IDTokenAlg = "none" }, `unsupported signing algorithm "none"`},
		{"lower-case alg", func(c *Config) { c.IDTokenAlg = "rs256" }, "unsupported signing algorithm"},
		{"ES384", func(c *Config) { c.AccessTokenAlg = "ES384" }, "unsupported signing algorithm"},
		{"empty alg after defaults", func(c *Config) { c.IDTokenAlg = "" }, "unsupported signing algorithm"},
		{"rotation equals prepublish", func(c *Config) { c.RotationInterval = c.PrePublish }, "must exceed the pre-publication time"},
		{"rotation below prepublish", func(c *Config) { c.RotationInterval = 30 * time.Minute }, "must exceed the pre-publication time"},
		{"rotation just above prepublish", func(c *Config) { c.RotationInterval = c.PrePublish + time.Second }, ""},
		{"negative rotation", func(c *Config) { c.RotationInterval = -time.Hour }, "must not be negative"},
		{"negative prepublish", func(c *Config) { c.PrePublish = -time.Hour }, "must not be negative"},
		{"negative retire", func(c *Config) { c.RetireAfter = -time.Hour }, "must not be negative"},
		{"zero reload", func(c *Config) { c.ReloadInterval = 0 }, "reload interval must be positive"},
		{"negative max-age", func(c *Config) { c.JWKSMaxAge = -time.Second }, "must not be negative"},
		{"max-age above prepublish", func(c *Config) { c.JWKSMaxAge = c.PrePublish + time.Second }, "JWKS max-age"},
		{"max-age plus reload fits in prepublish", func(c *Config) { c.JWKSMaxAge = c.PrePublish - c.ReloadInterval }, ""},
		{"max-age plus reload exceeds prepublish", func(c *Config) { c.JWKSMaxAge = c.PrePublish - c.ReloadInterval + time.Second }, "at least the JWKS max-age plus the key reload interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mut(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate(%+v) = %v, want nil", c, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate(%+v) = nil, want error containing %q", c, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate error %q does not contain %q", err, tt.wantErr)
			}
			// New applies the same validation (after defaults, which fill
			// zero fields, so only compare when they change nothing).
			if c.WithDefaults() != c {
				return
			}
			if _, nerr := New(c, nil, secretA, discardLogger); (nerr == nil) != (err == nil) {
				t.Fatalf("New disagrees with Validate: New=%v Validate=%v", nerr, err)
			}
		})
	}
}

func TestConfigAlgs(t *testing.T) {
	tests := []struct {
		at, id string
		want   string
	}{
		{ES256, RS256, "ES256,RS256"},
		{EdDSA, EdDSA, "EdDSA"},
		{RS256, ES256, "RS256,ES256"},
	}
	for _, tt := range tests {
		got := strings.Join(Config{AccessTokenAlg: tt.at, IDTokenAlg: tt.id}.algs(), ",")
		if got != tt.want {
			t.Errorf("algs(%s,%s) = %s, want %s", tt.at, tt.id, got, tt.want)
		}
	}
}
