package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/oauthd/oauthd/internal/secret"
)

// systemSecret returns OAUTHD_SECRET, or the secret stored in the data dir,
// generating it on first use. Processes sharing one PostgreSQL must share
// the secret: set OAUTHD_SECRET on all of them.
func systemSecret(c *Config) ([]byte, error) {
	if c.Secret != "" {
		return []byte(c.Secret), nil
	}
	v, err := readOrCreate(c.DataDir, c.secretFile(), func() string { return secret.Generate(32) })
	if err != nil {
		return nil, fmt.Errorf("OAUTHD_SECRET is not set and %w", err)
	}
	if len(v) < secret.MinLength {
		return nil, fmt.Errorf("the secret in %s is shorter than %d bytes", c.secretFile(), secret.MinLength)
	}
	return []byte(v), nil
}

// adminToken returns OAUTHD_ADMIN_TOKEN, or the token stored in the data dir,
// generating it on first use; generated reports whether it came from a file.
func adminToken(c *Config) (token string, fromFile bool, err error) {
	if c.AdminToken != "" {
		return c.AdminToken, false, nil
	}
	v, err := readOrCreate(c.DataDir, c.adminTokenFile(), func() string { return secret.Generate(32) })
	if err != nil {
		return "", false, fmt.Errorf("OAUTHD_ADMIN_TOKEN is not set and %w", err)
	}
	return v, true, nil
}

// readOrCreate reads a one-line secret file, creating it (mode 0600) when
// it does not exist. The value is written to a temporary file and linked into
// place, which fails if the file appeared meanwhile: two first starts cannot
// end up with different values, and no reader sees a half-written file.
func readOrCreate(dir, path string, gen func() string) (string, error) {
	for attempt := 0; ; attempt++ {
		b, err := os.ReadFile(path)
		if err == nil {
			return strings.TrimSpace(string(b)), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt > 0 {
			return "", fmt.Errorf("cannot read %s: %w", path, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("cannot create %s: %w", dir, err)
		}
		tmp, err := os.CreateTemp(dir, ".tmp-secret-*")
		if err != nil {
			return "", fmt.Errorf("cannot create a file in %s: %w", dir, err)
		}
		_, werr := tmp.WriteString(gen() + "\n")
		cerr := tmp.Close()
		if werr == nil && cerr == nil {
			err = os.Link(tmp.Name(), path)
		}
		_ = os.Remove(tmp.Name())
		switch {
		case werr != nil || cerr != nil:
			return "", fmt.Errorf("cannot write %s: %w", path, errors.Join(werr, cerr))
		case err != nil && !errors.Is(err, fs.ErrExist):
			return "", fmt.Errorf("cannot create %s: %w", path, err)
		}
		// Linked, or another process won the race: read what is there.
	}
}
