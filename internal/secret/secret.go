// Package secret turns the system secret (OAUTHD_SECRET) into purpose-bound
// keys and hashes server-generated client secrets.
//
// One master secret, many keys: each use gets its own key through HKDF-SHA-256
// with a distinct label, so a key leaked from one use (say, the fosite HMAC
// secret) says nothing about another (the key-encryption key).
package secret

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// MinLength is the shortest system secret accepted, in bytes.
const MinLength = 32

// Purpose labels; changing one invalidates everything derived from it.
const (
	KeyEncryption    = "oauthd/v1/signing-key-encryption"
	ClientSecretHMAC = "oauthd/v1/client-secret-hmac"
	TokenHMAC        = "oauthd/v1/opaque-token-hmac"
	CSRF             = "oauthd/v1/csrf-token-hmac"
	Seal             = "oauthd/v1/browser-and-successor-seal"
)

// Derive returns a 32-byte key for purpose from the master secret.
func Derive(master []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, master, nil, purpose, 32)
	if err != nil { // only for lengths HKDF cannot produce; 32 always works
		panic(err)
	}
	return k
}

// Generate returns n random bytes, base64url-encoded without padding.
func Generate(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashPrefix marks the hash scheme so it can change without a migration.
const hashPrefix = "hmac-sha256$"

// Hasher hashes client secrets with HMAC-SHA-256 under a key derived from the
// system secret. Client secrets are server-generated with 256 bits of
// entropy, so a slow password hash would add cost to every token request and
// no security: nobody can guess them, and a database dump without the system
// secret cannot even be checked offline. Hasher implements fosite.Hasher.
type Hasher struct {
	key []byte
	// macs reuses HMAC states: every token request checks a secret, and a
	// fresh HMAC costs two SHA-256 initialisations and several allocations.
	macs sync.Pool
}

// NewHasher derives the client-secret key from master.
func NewHasher(master []byte) *Hasher {
	h := &Hasher{key: Derive(master, ClientSecretHMAC)}
	h.macs.New = func() any { return hmac.New(sha256.New, h.key) }
	return h
}

func (h *Hasher) sum(data []byte) []byte {
	m := h.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(data)
	out := m.Sum(make([]byte, 0, sha256.Size))
	h.macs.Put(m)
	return out
}

// HashString returns the storable hash of a secret.
func (h *Hasher) HashString(secret string) string {
	return hashPrefix + base64.RawStdEncoding.EncodeToString(h.sum([]byte(secret)))
}

// ErrMismatch: the secret does not match the hash.
var ErrMismatch = errors.New("secret: mismatch")

// Compare checks data against hash in constant time (for equal-length
// inputs, which every stored hash is).
func (h *Hasher) Compare(_ context.Context, hash, data []byte) error {
	want, ok := strings.CutPrefix(string(hash), hashPrefix)
	if !ok {
		return fmt.Errorf("secret: unknown hash scheme: %w", ErrMismatch)
	}
	wantSum, err := base64.RawStdEncoding.DecodeString(want)
	if err != nil {
		return fmt.Errorf("secret: corrupt hash: %w", ErrMismatch)
	}
	if subtle.ConstantTimeCompare(wantSum, h.sum(data)) != 1 {
		return ErrMismatch
	}
	return nil
}

// Hash implements fosite.Hasher.
func (h *Hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return []byte(h.HashString(string(data))), nil
}

// Equal compares two secrets in constant time without leaking their lengths
// through timing: both sides are hashed first.
func Equal(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}
