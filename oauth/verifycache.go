package oauth

import (
	"sync"
	"time"
)

// verifiedTokens remembers access tokens whose signature, type and issuer
// were verified, with their claims, until they expire. Introspection and
// userinfo see the same token many times in its short life; an ECDSA
// verification is most of their cost. Only the cryptographic verdict is
// cached: whether the token is still active (jti denylist, grant session)
// is asked of the database every time, so a revocation is seen at once.
//
// The key is the whole token, never its signature part alone: a cached
// signature glued to another payload must not pass.
type verifiedTokens struct {
	mu      sync.RWMutex
	entries map[string]*accessClaims
	max     int
}

func newVerifiedTokens(max int) *verifiedTokens {
	return &verifiedTokens{entries: make(map[string]*accessClaims), max: max}
}

// get returns the claims of a verified token that has not expired at now.
func (v *verifiedTokens) get(token string, now time.Time) (*accessClaims, bool) {
	v.mu.RLock()
	c, ok := v.entries[token]
	v.mu.RUnlock()
	if !ok || !now.Before(time.Unix(c.ExpiresAt, 0)) {
		return nil, false
	}
	return c, true
}

// put remembers a verified, unexpired token. When full, expired entries are
// dropped, and if that frees nothing the cache starts over (bounded memory,
// refilled by the next verifications).
func (v *verifiedTokens) put(token string, c *accessClaims, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.entries) >= v.max {
		for k, e := range v.entries {
			if !now.Before(time.Unix(e.ExpiresAt, 0)) {
				delete(v.entries, k)
			}
		}
		if len(v.entries) >= v.max {
			v.entries = make(map[string]*accessClaims)
		}
	}
	v.entries[token] = c
}
