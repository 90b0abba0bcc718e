package keys

import (
	"context"
	"testing"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// benchManager returns an initialised manager on SQLite signing alg for
// both token kinds (the hot paths touch no database, so one backend does).
func benchManager(b *testing.B, alg string) *Manager {
	b.Helper()
	st := storagetest.Backends(b)[0].Open(b)
	m := newManager(b, Config{AccessTokenAlg: alg, IDTokenAlg: alg}, st, secretA, newClock())
	mustInit(b, m)
	return m
}

var benchClaims = []byte(`{"iss":"https://auth.example.com","sub":"alice","aud":"https://api.example.com","client_id":"app","exp":1893456600,"iat":1893456000,"jti":"0123456789abcdef0123456789abcdef","scope":"openid profile email"}`)

func benchSign(b *testing.B, alg string) {
	m := benchManager(b, alg)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.SignAccessToken(benchClaims); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignES256(b *testing.B) { benchSign(b, ES256) }
func BenchmarkSignRS256(b *testing.B) { benchSign(b, RS256) }
func BenchmarkSignEdDSA(b *testing.B) { benchSign(b, EdDSA) }

func BenchmarkVerifyES256(b *testing.B) {
	m := benchManager(b, ES256)
	tok, err := m.SignAccessToken(benchClaims)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWKS(b *testing.B) {
	m := benchManager(b, ES256)
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for b.Loop() {
		body, etag := m.JWKS()
		n += len(body) + len(etag)
	}
	if n == 0 {
		b.Fatal("empty JWKS")
	}
}
