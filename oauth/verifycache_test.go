package oauth

import (
	"fmt"
	"testing"
	"time"
)

func TestVerifiedTokens(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	v := newVerifiedTokens(3)
	live := &accessClaims{JTI: "a", ExpiresAt: now.Add(time.Minute).Unix()}
	v.put("tok.a.sig", live, now)
	if c, ok := v.get("tok.a.sig", now); !ok || c != live {
		t.Fatal("a verified token is not found")
	}
	for _, tc := range []struct {
		name  string
		token string
		at    time.Time
	}{
		{"another payload with the same signature", "tok.b.sig", now},
		{"the token at its expiry", "tok.a.sig", now.Add(time.Minute)},
		{"the token after its expiry", "tok.a.sig", now.Add(2 * time.Minute)},
	} {
		if _, ok := v.get(tc.token, tc.at); ok {
			t.Errorf("%s: found, want not", tc.name)
		}
	}
	// Full: expired entries go first, then everything.
	v.put("old", &accessClaims{ExpiresAt: now.Add(-time.Second).Unix()}, now)
	v.put("x", live, now)
	v.put("y", live, now)
	if _, ok := v.get("tok.a.sig", now); !ok {
		t.Error("a live entry was dropped while an expired one could go")
	}
	for i := 0; i < 10; i++ {
		v.put(fmt.Sprint("k", i), live, now)
	}
	if n := len(v.entries); n > 3 {
		t.Errorf("cache holds %d entries, max 3", n)
	}
}
