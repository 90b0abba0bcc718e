package keys

import (
	"fmt"
	"time"
)

// Supported signing algorithms.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Config says which algorithms sign and how keys rotate.
type Config struct {
	// AccessTokenAlg signs access tokens (default ES256).
	AccessTokenAlg string
	// IDTokenAlg signs ID tokens (default RS256).
	IDTokenAlg string
	// RotationInterval is how long a key signs before its scheduled
	// successor takes over; 0 disables scheduled rotation.
	RotationInterval time.Duration
	// PrePublish is how long a scheduled key is in the JWKS before it signs.
	// It must exceed every verifier's JWKS cache lifetime.
	PrePublish time.Duration
	// RetireAfter is how long a superseded key stays published after its
	// successor activates: at least the longest lifetime of a token it signed.
	RetireAfter time.Duration
	// ReloadInterval is how often the key set is re-read from the database,
	// which bounds how late a process learns of another process's rotation.
	ReloadInterval time.Duration
	// JWKSMaxAge is the Cache-Control max-age of the JWKS answer.
	JWKSMaxAge time.Duration
}

// WithDefaults fills zero fields with the defaults.
func (c Config) WithDefaults() Config {
	if c.AccessTokenAlg == "" {
		c.AccessTokenAlg = ES256
	}
	if c.IDTokenAlg == "" {
		c.IDTokenAlg = RS256
	}
	if c.PrePublish == 0 {
		c.PrePublish = time.Hour
	}
	if c.RetireAfter == 0 {
		c.RetireAfter = 2 * time.Hour
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = 10 * time.Second
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = 5 * time.Minute
	}
	return c
}

// Validate reports configuration mistakes.
func (c Config) Validate() error {
	for _, a := range []string{c.AccessTokenAlg, c.IDTokenAlg} {
		if !supportedAlg(a) {
			return fmt.Errorf("unsupported signing algorithm %q (want RS256, ES256 or EdDSA)", a)
		}
	}
	if c.RotationInterval < 0 || c.PrePublish < 0 || c.RetireAfter < 0 || c.JWKSMaxAge < 0 {
		return fmt.Errorf("key durations must not be negative")
	}
	if c.ReloadInterval <= 0 {
		return fmt.Errorf("key reload interval must be positive")
	}
	if c.RotationInterval > 0 && c.RotationInterval <= c.PrePublish {
		return fmt.Errorf("key rotation interval (%s) must exceed the pre-publication time (%s)", c.RotationInterval, c.PrePublish)
	}
	// A new key must be in every verifier's JWKS before it signs: in every
	// process's memory (ReloadInterval) and in caches (JWKSMaxAge). A
	// pre-publication of zero is an explicit choice to sign at once.
	if c.JWKSMaxAge > c.PrePublish {
		return fmt.Errorf("JWKS max-age (%s) must not exceed the pre-publication time (%s), or caches miss new keys", c.JWKSMaxAge, c.PrePublish)
	}
	if c.PrePublish > 0 && c.PrePublish < c.JWKSMaxAge+c.ReloadInterval {
		return fmt.Errorf("pre-publication time (%s) must be at least the JWKS max-age plus the key reload interval (%s)", c.PrePublish, c.JWKSMaxAge+c.ReloadInterval)
	}
	return nil
}

func supportedAlg(a string) bool { return a == RS256 || a == ES256 || a == EdDSA }

// algs returns the configured algorithms without duplicates, access first.
func (c Config) algs() []string {
	if c.AccessTokenAlg == c.IDTokenAlg {
		return []string{c.AccessTokenAlg}
	}
	return []string{c.AccessTokenAlg, c.IDTokenAlg}
}
