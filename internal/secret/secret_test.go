package secret

import (
	"context"
	"strings"
	"sync"
	"testing"
)

func TestHasher(t *testing.T) {
	h := NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	other := NewHasher([]byte("another-master-secret-of-32-bytes!"))
	ctx := context.Background()
	hash := h.HashString("s3cret")
	if !strings.HasPrefix(hash, "hmac-sha256$") || strings.Contains(hash, "s3cret") {
		t.Fatalf("hash %q", hash)
	}
	tests := []struct {
		name   string
		hasher *Hasher
		hash   string
		secret string
		ok     bool
	}{
		{"match", h, hash, "s3cret", true},
		{"wrong secret", h, hash, "s3creT", false},
		{"prefix of secret", h, hash, "s3cre", false},
		{"other master secret", other, hash, "s3cret", false},
		{"unknown scheme", h, "$2a$10$abc", "s3cret", false},
		{"corrupt hash", h, "hmac-sha256$!!!", "s3cret", false},
		{"empty hash", h, "", "", false},
	}
	for _, tc := range tests {
		if err := tc.hasher.Compare(ctx, []byte(tc.hash), []byte(tc.secret)); (err == nil) != tc.ok {
			t.Errorf("%s: Compare = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	// Pooled HMAC states give the same answers under concurrency.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				if h.HashString("s3cret") != hash || h.Compare(ctx, []byte(hash), []byte("x")) == nil {
					t.Error("pooled HMAC gave a different answer")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDeriveSeparatesPurposes(t *testing.T) {
	m := []byte("0123456789abcdef0123456789abcdef")
	a, b := Derive(m, KeyEncryption), Derive(m, ClientSecretHMAC)
	if len(a) != 32 || string(a) == string(b) || string(a) != string(Derive(m, KeyEncryption)) {
		t.Error("Derive must be deterministic, 32 bytes, and differ per purpose")
	}
}

func TestEqualAndGenerate(t *testing.T) {
	if !Equal("abc", "abc") || Equal("abc", "abd") || Equal("abc", "abcd") {
		t.Error("Equal")
	}
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		g := Generate(32)
		if len(g) != 43 || seen[g] || strings.ContainsAny(g, "+/=") {
			t.Fatalf("Generate gave %q", g)
		}
		seen[g] = true
	}
}
