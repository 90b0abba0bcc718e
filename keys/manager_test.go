package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthd/oauthd/storage"
	"github.com/oauthd/oauthd/storage/storagetest"
)

func TestInitCreatesOneKeyPerAlg(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // algorithms with a key, sorted
	}{
		{"defaults", Config{}, []string{ES256, RS256}},
		{"EdDSA access", Config{AccessTokenAlg: EdDSA}, []string{EdDSA, RS256}},
		{"EdDSA both", Config{AccessTokenAlg: EdDSA, IDTokenAlg: EdDSA}, []string{EdDSA}},
		{"ES256 both with rotation", Config{AccessTokenAlg: ES256, IDTokenAlg: ES256, RotationInterval: 720 * time.Hour}, []string{ES256}},
	}
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				stores := openShared(t, b, 2)
				clk := newClock()
				m := newManager(t, tt.cfg, stores[0], secretA, clk)
				if err := m.Ready(); !errors.Is(err, ErrNoKey) {
					t.Fatalf("Ready before Init = %v, want ErrNoKey", err)
				}
				if _, err := m.SignAccessToken([]byte(`{}`)); !errors.Is(err, ErrNoKey) {
					t.Fatalf("Sign before Init = %v, want ErrNoKey", err)
				}
				if body, _ := m.JWKS(); string(body) != `{"keys":[]}` {
					t.Fatalf("JWKS before Init = %s", body)
				}
				mustInit(t, m)

				recs := rows(t, stores[0])
				var algs []string
				for _, r := range recs {
					algs = append(algs, r.Alg)
					if !r.ActivatesAt.Equal(t0) {
						t.Errorf("key %s activates at %s, want now (%s)", r.KID, r.ActivatesAt, t0)
					}
					if r.RetiresAt != nil {
						t.Errorf("new key %s retires at %s", r.KID, *r.RetiresAt)
					}
					if r.KID == "" {
						t.Errorf("key without kid: %+v", r)
					}
				}
				slices.Sort(algs)
				if !slices.Equal(algs, tt.want) {
					t.Fatalf("stored algs = %v, want %v", algs, tt.want)
				}
				if err := m.Ready(); err != nil {
					t.Fatalf("Ready after Init: %v", err)
				}
				infos, err := m.List(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range infos {
					if in.Status != "active" {
						t.Errorf("key %s (%s) status %q, want active", in.KID, in.Alg, in.Status)
					}
				}
				body1, etag1 := m.JWKS()
				if got := jwksKIDs(t, body1); len(got) != len(tt.want) {
					t.Fatalf("JWKS kids = %v, want %d", got, len(tt.want))
				}

				// Init again, later, on the same manager and on a second
				// manager ("process") with its own connection: nothing new.
				clk.Advance(time.Minute)
				mustInit(t, m)
				m2 := newManager(t, tt.cfg, stores[1], secretA, clk)
				mustInit(t, m2)
				if again := rows(t, stores[0]); len(again) != len(recs) {
					t.Fatalf("second Init changed the key count: %d → %d", len(recs), len(again))
				}
				for _, mm := range []*Manager{m, m2} {
					body, etag := mm.JWKS()
					if !bytes.Equal(body, body1) || etag != etag1 {
						t.Errorf("JWKS after second Init differs:\n%s\n%s", body1, body)
					}
				}
				if a, b := activeKIDs(t, m), activeKIDs(t, m2); fmt.Sprint(a) != fmt.Sprint(b) {
					t.Errorf("managers disagree on active keys: %v vs %v", a, b)
				}
			})
		}
	})
}

// TestInitRetiresUnconfiguredAlg: keys of an algorithm no longer configured
// stay published for RetireAfter, then go.
func TestInitRetiresUnconfiguredAlg(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		st := b.Open(t)
		clk := newClock()
		m := newManager(t, Config{AccessTokenAlg: ES256, IDTokenAlg: EdDSA}, st, secretA, clk)
		mustInit(t, m)
		es := activeKIDs(t, m)[ES256]

		now := clk.Advance(time.Hour)
		m2 := newManager(t, Config{AccessTokenAlg: EdDSA, IDTokenAlg: EdDSA}, st, secretA, clk)
		mustInit(t, m2)
		recs := rows(t, st)
		if len(recs) != 2 {
			t.Fatalf("rows = %d, want 2 (no new EdDSA key)", len(recs))
		}
		r := rowByKID(t, recs, es)
		if r.RetiresAt == nil || !r.RetiresAt.Equal(now.Add(m2.Config().RetireAfter)) {
			t.Fatalf("unconfigured ES256 key retires at %v, want %s", r.RetiresAt, now.Add(m2.Config().RetireAfter))
		}
		if !published(t, m2, es) {
			t.Fatal("unconfigured key left the JWKS before its retirement")
		}
		clk.Set(now.Add(m2.Config().RetireAfter))
		if published(t, m2, es) {
			t.Fatal("unconfigured key still published after its retirement")
		}
		mustTick(t, m2)
		if n := len(rows(t, st)); n != 1 {
			t.Fatalf("rows after retirement = %d, want 1", n)
		}
	})
}

// TestSignVerifyRoundTrip covers every algorithm for both token kinds, and
// checks the tokens and the JWKS the way an independent verifier would.
func TestSignVerifyRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		at, id string
	}{
		{"ES256 access, RS256 id", Config{}, ES256, RS256},
		{"RS256 access, EdDSA id", Config{AccessTokenAlg: RS256, IDTokenAlg: EdDSA}, RS256, EdDSA},
		{"EdDSA access, ES256 id", Config{AccessTokenAlg: EdDSA, IDTokenAlg: ES256}, EdDSA, ES256},
	}
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				m := newManager(t, tt.cfg, b.Open(t), secretA, newClock())
				mustInit(t, m)
				body, etag := m.JWKS()
				checkJWKS(t, body)
				if etag != etagOf(body) || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
					t.Fatalf("ETag %s is not the quoted hash of the body", etag)
				}
				active := activeKIDs(t, m)

				for _, c := range []struct {
					kind, alg, typ string
					sign           func([]byte) (string, error)
				}{
					{"access", tt.at, "at+jwt", m.SignAccessToken},
					{"id", tt.id, "JWT", m.SignIDToken},
				} {
					payload := []byte(fmt.Sprintf(`{"sub":"alice","kind":%q}`, c.kind))
					tok, err := c.sign(payload)
					if err != nil {
						t.Fatalf("%s: sign: %v", c.kind, err)
					}
					h := tokenHeader(t, tok)
					if h["alg"] != c.alg {
						t.Errorf("%s: header alg %v, want %s", c.kind, h["alg"], c.alg)
					}
					if h["typ"] != c.typ {
						t.Errorf("%s: header typ %v, want %s", c.kind, h["typ"], c.typ)
					}
					if h["kid"] != active[c.alg] || !slices.Contains(jwksKIDs(t, body), active[c.alg]) {
						t.Errorf("%s: header kid %v, want the active published %s", c.kind, h["kid"], active[c.alg])
					}
					for _, forbidden := range []string{"jwk", "x5c", "jku", "crit"} {
						if _, ok := h[forbidden]; ok {
							t.Errorf("%s: header carries %q", c.kind, forbidden)
						}
					}
					got, err := verifyWithJWKS(body, tok)
					if err != nil || !bytes.Equal(got, payload) {
						t.Errorf("%s: independent verification against JWKS: %v (payload %s)", c.kind, err, got)
					}
					v, err := m.Verify(context.Background(), tok)
					if err != nil {
						t.Fatalf("%s: Verify: %v", c.kind, err)
					}
					if v.KID != active[c.alg] || v.Alg != c.alg || v.Typ != c.typ || !bytes.Equal(v.Payload, payload) {
						t.Errorf("%s: Verify = kid %s alg %s typ %s payload %s", c.kind, v.KID, v.Alg, v.Typ, v.Payload)
					}
					// The explicit Sign with the same alg and typ uses the same key.
					tok2, err := m.Sign(c.alg, c.typ, payload)
					if err != nil || tokenHeader(t, tok2)["kid"] != active[c.alg] {
						t.Errorf("%s: Sign(%s) = %v, kid %v", c.kind, c.alg, err, tokenHeader(t, tok2)["kid"])
					}
				}
				// An algorithm that is not configured has no key.
				for _, alg := range []string{RS256, ES256, EdDSA} {
					if _, ok := active[alg]; !ok {
						if _, err := m.Sign(alg, "JWT", []byte(`{}`)); !errors.Is(err, ErrNoKey) {
							t.Errorf("Sign(%s) with no %s key = %v, want ErrNoKey", alg, alg, err)
						}
					}
				}
				// Public returns the standard-library key that verifies.
				for alg, kid := range active {
					k, ok := publishedKey(m, kid)
					if !ok || k.Alg != alg {
						t.Fatalf("publishedKey(%s) = %v, %v", kid, k, ok)
					}
					switch k.Public().(type) {
					case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
					default:
						t.Errorf("Public() of %s is %T", alg, k.Public())
					}
				}
			})
		}
	})
}

// checkJWKS applies security checklist row J6 to a JWKS document.
func checkJWKS(t *testing.T, body []byte) {
	t.Helper()
	var raw struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	if len(raw.Keys) == 0 {
		t.Fatal("JWKS has no keys")
	}
	seen := map[string]bool{}
	for _, k := range raw.Keys {
		for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			if _, ok := k[priv]; ok {
				t.Errorf("JWKS key %s carries private member %q", k["kid"], priv)
			}
		}
		var kid, use, alg string
		_ = json.Unmarshal(k["kid"], &kid)
		_ = json.Unmarshal(k["use"], &use)
		_ = json.Unmarshal(k["alg"], &alg)
		if kid == "" || seen[kid] {
			t.Errorf("JWKS kid %q empty or repeated", kid)
		}
		seen[kid] = true
		if use != "sig" {
			t.Errorf("JWKS key %s use %q, want sig", kid, use)
		}
		if !supportedAlg(alg) {
			t.Errorf("JWKS key %s alg %q", kid, alg)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Errorf("JWKS key %s: public=%v valid=%v", k.KeyID, k.IsPublic(), k.Valid())
		}
		if rk, ok := k.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
			t.Errorf("JWKS RSA key %s has a %d-bit modulus", k.KeyID, rk.N.BitLen())
		}
		// The kid is the RFC 7638 thumbprint, so no two key materials share one.
		if thumb, err := k.Thumbprint(crypto.SHA256); err != nil || base64.RawURLEncoding.EncodeToString(thumb) != k.KeyID {
			t.Errorf("JWKS kid %s is not the key's thumbprint (%v)", k.KeyID, err)
		}
	}
}

// forge signs payload with an arbitrary key and header kid/alg.
func forge(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, payload []byte) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatalf("forge signer: %v", err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyRejects(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		clk := newClock()
		m := newManager(t, Config{AccessTokenAlg: ES256, IDTokenAlg: RS256}, b.Open(t), secretA, clk)
		mustInit(t, m)
		other := newManager(t, Config{AccessTokenAlg: ES256, IDTokenAlg: RS256}, b.Open(t), secretA, clk)
		mustInit(t, other)
		active := activeKIDs(t, m)
		esKID, rsKID := active[ES256], active[RS256]
		payload := []byte(`{"sub":"alice","scope":"read"}`)

		good, err := m.SignAccessToken(payload)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(good, ".")
		rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pubJWK, _ := m.current().published[esKID].jwk.MarshalJSON()
		otherTok, err := other.SignAccessToken(payload)
		if err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			name    string
			tok     string
			wantErr error
			msg     string // substring of the error, when it pins which check fired
		}{
			{"tampered payload", parts[0] + "." + b64(`{"sub":"mallory","scope":"read"}`) + "." + parts[2], ErrInvalidSignature, ""},
			{"tampered signature", parts[0] + "." + parts[1] + "." + b64("not a signature at all, really not"), ErrInvalidSignature, ""},
			{"signature dropped", parts[0] + "." + parts[1] + ".", ErrInvalidSignature, ""},
			{"alg none", b64(`{"alg":"none","kid":"`+esKID+`","typ":"at+jwt"}`) + "." + parts[1] + ".", ErrInvalidSignature, ""},
			{"alg None", b64(`{"alg":"None","kid":"`+esKID+`"}`) + "." + parts[1] + ".", ErrInvalidSignature, ""},
			{"HS256 keyed with the public JWK", forge(t, jose.HS256, pubJWK, esKID, payload), ErrInvalidSignature, ""},
			{"HS256 keyed with random bytes", forge(t, jose.HS256, bytes.Repeat([]byte{7}, 32), esKID, payload), ErrInvalidSignature, ""},
			{"ES384 header", forge(t, jose.ES384, mustECKey(t, elliptic.P384()), esKID, payload), ErrInvalidSignature, ""},
			{"RS256 header on the ES256 kid", forge(t, jose.RS256, rsaKey, esKID, payload), ErrInvalidSignature, "does not match key"},
			{"ES256 header on the RS256 kid", forge(t, jose.ES256, ecKey, rsKID, payload), ErrInvalidSignature, "does not match key"},
			{"published kid, foreign key of the same alg", forge(t, jose.ES256, ecKey, esKID, payload), ErrInvalidSignature, ""},
			{"unknown kid", forge(t, jose.ES256, ecKey, "no-such-kid", payload), ErrUnknownKey, ""},
			{"no kid", forge(t, jose.ES256, ecKey, "", payload), ErrUnknownKey, ""},
			{"signed by another manager's database", otherTok, ErrUnknownKey, ""},
			{"too long", mustSign(t, m, bytes.Repeat([]byte("a"), 13000)), ErrInvalidSignature, "too long"},
			{"JSON serialization of a good token", jsonSerialization(t, good), ErrInvalidSignature, ""},
			{"two signatures", multiSigned(t, ecKey, esKID, payload), ErrInvalidSignature, ""},
			{"garbage", "not.a.jwt", ErrInvalidSignature, ""},
			{"empty", "", ErrInvalidSignature, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				clk.Advance(2 * time.Second) // let unknown kids reload, as they would in production
				v, err := m.Verify(context.Background(), tt.tok)
				if err == nil {
					t.Fatalf("Verify accepted the token (kid %s, alg %s, typ %s)", v.KID, v.Alg, v.Typ)
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
				}
				if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("Verify error = %v, want it to mention %q", err, tt.msg)
				}
			})
		}

		// The controls: the untouched token verifies, and so does a long
		// one just under the limit, so the rejections above are not an
		// accident of the payload or its size.
		if _, err := m.Verify(context.Background(), good); err != nil {
			t.Fatalf("good token: %v", err)
		}
		long := mustSign(t, m, bytes.Repeat([]byte("a"), 11000))
		if len(long) > maxTokenLength {
			t.Fatalf("control token is %d bytes", len(long))
		}
		if _, err := m.Verify(context.Background(), long); err != nil {
			t.Fatalf("token of %d bytes (< %d): %v", len(long), maxTokenLength, err)
		}
		// And the foreign manager accepts its own token.
		if _, err := other.Verify(context.Background(), otherTok); err != nil {
			t.Fatalf("other manager's own token: %v", err)
		}
	})
}

func mustECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSign(t *testing.T, m *Manager, payload []byte) string {
	t.Helper()
	tok, err := m.SignAccessToken(payload)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jsonSerialization re-encodes a compact JWS as flattened JSON, with an
// unprotected header claiming another typ.
func jsonSerialization(t *testing.T, compact string) string {
	t.Helper()
	p := strings.Split(compact, ".")
	b, _ := json.Marshal(map[string]any{"protected": p[0], "payload": p[1], "signature": p[2]})
	return string(b)
}

func multiSigned(t *testing.T, key *ecdsa.PrivateKey, kid string, payload []byte) string {
	t.Helper()
	other := mustECKey(t, elliptic.P256())
	s, err := jose.NewMultiSigner([]jose.SigningKey{
		{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: "x"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws.FullSerialize()
}

// TestVerifyJSONSerializationRejected: JWTs are compact (RFC 7519 §7.2); a
// token re-encoded as JWS JSON, possibly with an unprotected header, is not
// one of ours.
func TestVerifyJSONSerializationRejected(t *testing.T) {
	st := storagetest.Backends(t)[0].Open(t)
	m := newManager(t, Config{AccessTokenAlg: ES256, IDTokenAlg: ES256}, st, secretA, newClock())
	mustInit(t, m)
	id, err := m.SignIDToken([]byte(`{"sub":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(id, ".")
	for name, doc := range map[string]map[string]any{
		"flattened":             {"protected": p[0], "payload": p[1], "signature": p[2]},
		"flattened, typ header": {"protected": p[0], "payload": p[1], "signature": p[2], "header": map[string]any{"typ": "at+jwt"}},
		"flattened, cty header": {"protected": p[0], "payload": p[1], "signature": p[2], "header": map[string]any{"cty": "JWT"}},
		"general":               {"payload": p[1], "signatures": []any{map[string]any{"protected": p[0], "signature": p[2]}}},
	} {
		b, _ := json.Marshal(doc)
		if v, err := m.Verify(context.Background(), string(b)); err == nil {
			t.Errorf("%s: Verify accepted a JWS JSON serialization (JWTs are compact only, RFC 7519 §7.2): kid %s typ %s", name, v.KID, v.Typ)
		}
	}
}

// TestUnknownKIDReloadRate: an unknown kid reloads the key set from the
// database at most once a second, even under a flood of concurrent
// requests, and the reload finds a key another process just created.
func TestUnknownKIDReloadRate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		stores := openShared(t, b, 2)
		clk := newClock()
		cfg := Config{AccessTokenAlg: EdDSA, IDTokenAlg: EdDSA}
		spy := &spyStore{Store: stores[0]}
		m := newManager(t, cfg, spy, secretA, clk)
		mustInit(t, m)
		unknown := forge(t, jose.EdDSA, mustEdKey(t), "unknown-kid", []byte(`{}`))
		verifyN := func(n int, concurrent bool) {
			t.Helper()
			verify := func() {
				if _, err := m.Verify(context.Background(), unknown); !errors.Is(err, ErrUnknownKey) {
					t.Errorf("Verify(unknown kid) = %v, want ErrUnknownKey", err)
				}
			}
			if !concurrent {
				for i := 0; i < n; i++ {
					verify()
				}
				return
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					verify()
				}()
			}
			close(start)
			wg.Wait()
		}
		tests := []struct {
			name       string
			advance    time.Duration
			n          int
			concurrent bool
			reloads    int64
		}{
			{"right after Init's load", 0, 5, false, 0},
			{"999ms later", 999 * time.Millisecond, 5, false, 0},
			{"one second after the load", time.Millisecond, 5, false, 1},
			{"half a second later", 500 * time.Millisecond, 5, false, 0},
			{"another second later", time.Second, 5, false, 1},
			{"flood of 64 concurrent", 1100 * time.Millisecond, 64, true, 1},
			{"flood again, same second", 100 * time.Millisecond, 64, true, 0},
			{"second flood a second later", 1100 * time.Millisecond, 64, true, 1},
		}
		for _, tt := range tests {
			clk.Advance(tt.advance)
			before := spy.lists.Load()
			verifyN(tt.n, tt.concurrent)
			if got := spy.lists.Load() - before; got != tt.reloads {
				t.Errorf("%s: %d reloads for %d unknown-kid verifications, want %d", tt.name, got, tt.n, tt.reloads)
			}
		}

		// Another process rotates at once; this one has not reloaded yet
		// but finds the new kid through the unknown-kid reload.
		clk.Advance(time.Minute)
		p2 := newManager(t, cfg, stores[1], secretA, clk)
		mustInit(t, p2)
		newKID := mustRotate(t, p2, true)[EdDSA]
		tok, err := p2.SignAccessToken([]byte(`{"from":"p2"}`))
		if err != nil || tokenHeader(t, tok)["kid"] != newKID {
			t.Fatalf("p2 does not sign with its new key: %v", err)
		}
		if published(t, m, newKID) {
			t.Fatal("m knows the new key before any reload; the test proves nothing")
		}
		before := spy.lists.Load()
		if _, err := m.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify of the other process's fresh key: %v", err)
		}
		if got := spy.lists.Load() - before; got != 1 {
			t.Fatalf("reloads = %d, want 1", got)
		}
		if !published(t, m, newKID) {
			t.Fatal("the reload did not publish the new key")
		}
	})
}

func mustEdKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSecret: keys are encrypted under OAUTHD_SECRET, bound to their kid,
// and a process with another secret neither loads them nor adds keys the
// others cannot read.
func TestSecret(t *testing.T) {
	cfg := Config{RotationInterval: 720 * time.Hour}
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		stores := openShared(t, b, 2)
		clk := newClock()
		m := newManager(t, cfg, stores[0], secretA, clk)
		mustInit(t, m)
		recs := rows(t, stores[0])

		t.Run("stored private key is ciphertext", func(t *testing.T) {
			for _, r := range recs {
				k, _ := publishedKey(m, r.KID)
				der, err := x509.MarshalPKCS8PrivateKey(k.private)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(r.PrivateKey, der) || bytes.Contains(r.PrivateKey, der[len(der)-32:]) {
					t.Errorf("%s: the stored private key contains the PKCS#8 DER in clear", r.Alg)
				}
				if _, err := x509.ParsePKCS8PrivateKey(r.PrivateKey); err == nil {
					t.Errorf("%s: the stored private key parses as PKCS#8", r.Alg)
				}
				if want := m.aead.NonceSize() + len(der) + m.aead.Overhead(); len(r.PrivateKey) != want {
					t.Errorf("%s: stored %d bytes, want nonce+DER+tag = %d", r.Alg, len(r.PrivateKey), want)
				}
				if strings.Contains(r.PublicJWK, `"d"`) {
					t.Errorf("%s: stored public JWK has a private member: %s", r.Alg, r.PublicJWK)
				}
				// And it does decrypt to exactly that DER under the right kid.
				nonce := r.PrivateKey[:m.aead.NonceSize()]
				plain, err := m.aead.Open(nil, nonce, r.PrivateKey[m.aead.NonceSize():], []byte(r.KID))
				if err != nil || !bytes.Equal(plain, der) {
					t.Errorf("%s: ciphertext does not open to the key's DER: %v", r.Alg, err)
				}
			}
		})

		t.Run("other secret fails Init and Load", func(t *testing.T) {
			wrong := newManager(t, cfg, stores[1], secretB, clk)
			for name, op := range map[string]func(context.Context) error{"Init": wrong.Init, "Load": wrong.Load} {
				err := op(context.Background())
				if err == nil {
					t.Fatalf("%s with another secret succeeded", name)
				}
				if !strings.Contains(err.Error(), "OAUTHD_SECRET") || !errors.Is(err, errUndecryptable) {
					t.Fatalf("%s error %q does not name OAUTHD_SECRET", name, err)
				}
			}
			if _, err := wrong.Active(ES256); !errors.Is(err, ErrNoKey) {
				t.Fatalf("wrong-secret manager has an active key: %v", err)
			}
		})

		t.Run("other secret adds no key when rotation is due", func(t *testing.T) {
			clk.Set(t0.Add(cfg.RotationInterval)) // overdue
			wrong := newManager(t, cfg, stores[1], secretB, clk)
			if err := wrong.Init(context.Background()); err == nil || !strings.Contains(err.Error(), "OAUTHD_SECRET") {
				t.Fatalf("Init with another secret, rotation due = %v, want an OAUTHD_SECRET error", err)
			}
			if _, err := wrong.Rotate(context.Background(), true); err == nil {
				t.Fatal("Rotate with another secret succeeded")
			}
			if got := rows(t, stores[0]); len(got) != len(recs) {
				t.Fatalf("a wrong-secret process changed the key set: %d → %d rows", len(recs), len(got))
			}
			// The rightful process is unharmed and rotates itself.
			if err := m.Tick(context.Background()); err != nil {
				t.Fatalf("Tick of the right-secret process: %v", err)
			}
			if got := rows(t, stores[0]); len(got) != 2*len(recs) {
				t.Fatalf("right-secret process did not rotate: %d rows", len(got))
			}
			clk.Set(t0)
		})

		t.Run("ciphertext moved to another kid", func(t *testing.T) {
			var es storage.SigningKey
			for _, r := range recs {
				if r.Alg == ES256 {
					es = r
				}
			}
			// The moved ciphertext opens nowhere but under its own kid,
			// even with the right secret and a matching algorithm.
			moved := es
			moved.KID = "moved-" + es.KID
			if _, err := parseRecord(m.aead, moved); !errors.Is(err, errUndecryptable) {
				t.Fatalf("parseRecord of a moved ciphertext = %v, want errUndecryptable", err)
			}
			if _, err := parseRecord(m.aead, es); err != nil {
				t.Fatalf("control: parseRecord of the original row: %v", err)
			}
			flipped := es
			flipped.PrivateKey = bytes.Clone(es.PrivateKey)
			flipped.PrivateKey[len(flipped.PrivateKey)/2] ^= 1
			if _, err := parseRecord(m.aead, flipped); !errors.Is(err, errUndecryptable) {
				t.Fatalf("parseRecord of a flipped ciphertext = %v, want errUndecryptable", err)
			}
			short := es
			short.PrivateKey = es.PrivateKey[:5]
			if _, err := parseRecord(m.aead, short); !errors.Is(err, errUndecryptable) {
				t.Fatalf("parseRecord of a truncated ciphertext = %v", err)
			}
			// Through the database: a row carrying another row's ciphertext
			// makes Load fail.
			err := stores[0].UpdateSigningKeys(context.Background(), func([]storage.SigningKey) (storage.KeyChange, error) {
				return storage.KeyChange{Add: []storage.SigningKey{{KID: moved.KID, Alg: es.Alg, PrivateKey: es.PrivateKey, PublicJWK: es.PublicJWK, ActivatesAt: t0.Add(-time.Hour)}}}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			fresh := newManager(t, cfg, stores[1], secretA, clk)
			if err := fresh.Load(context.Background()); !errors.Is(err, errUndecryptable) {
				t.Fatalf("Load with a moved ciphertext = %v, want errUndecryptable", err)
			}
		})
	})
}

// TestConcurrentSignDuringRotation runs signers, verifiers and JWKS readers
// while keys are reloaded, rotated and the clock moves (run under -race).
func TestConcurrentSignDuringRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		clk := newClock()
		cfg := Config{AccessTokenAlg: ES256, IDTokenAlg: EdDSA, RotationInterval: 2 * time.Hour, PrePublish: 10 * time.Minute, RetireAfter: 24 * time.Hour}
		m := newManager(t, cfg, b.Open(t), secretA, clk)
		mustInit(t, m)

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[string]bool{}
		var signed int
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					sign := m.SignAccessToken
					if i%2 == 1 {
						sign = m.SignIDToken
					}
					payload := []byte(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i))
					tok, err := sign(payload)
					if err != nil {
						t.Errorf("sign: %v", err)
						return
					}
					v, err := m.Verify(context.Background(), tok)
					if err != nil || !bytes.Equal(v.Payload, payload) {
						t.Errorf("verify own token: %v", err)
						return
					}
					body, etag := m.JWKS()
					if etag != etagOf(body) {
						t.Errorf("ETag %s does not match body", etag)
						return
					}
					mu.Lock()
					seen[v.KID] = true
					signed++
					mu.Unlock()
				}
			}(g)
		}
		for i := 0; i < 6; i++ {
			clk.Advance(7 * time.Minute)
			var err error
			switch i % 3 {
			case 0:
				_, err = m.Rotate(context.Background(), true)
			case 1:
				_, err = m.Rotate(context.Background(), false)
			case 2:
				err = m.Tick(context.Background())
			}
			if err != nil {
				t.Errorf("maintenance %d: %v", i, err)
			}
			if err := m.Load(context.Background()); err != nil {
				t.Error(err)
			}
			if _, err := m.List(context.Background()); err != nil {
				t.Error(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		if signed == 0 || len(seen) < 3 {
			t.Fatalf("signed %d tokens with %d keys; the test did not overlap signing and rotation", signed, len(seen))
		}
	})
}

// TestLoadNotOverwrittenByStaleLoad: a slow Load that read the key set
// before a rotation must not replace the newer set stored by the rotation.
func TestLoadNotOverwrittenByStaleLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		clk := newClock()
		spy := &spyStore{Store: b.Open(t)}
		m := newManager(t, Config{AccessTokenAlg: EdDSA, IDTokenAlg: EdDSA}, spy, secretA, clk)
		mustInit(t, m)
		clk.Advance(time.Minute)

		entered, release := make(chan struct{}), make(chan struct{})
		updated := make(chan struct{}, 1)
		var first atomic.Bool
		spy.afterList = func() {
			if first.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
		}
		spy.afterUpdate = func() { updated <- struct{}{} }

		slow := make(chan error, 1)
		go func() { slow <- m.Load(context.Background()) }()
		<-entered // the slow Load holds the old rows

		type rotated struct {
			kid string
			err error
		}
		rot := make(chan rotated, 1)
		go func() {
			infos, err := m.Rotate(context.Background(), true)
			r := rotated{err: err}
			if len(infos) == 1 {
				r.kid = infos[0].KID
			}
			rot <- r
		}()
		<-updated // the new key is in the database
		var r rotated
		select {
		case r = <-rot: // Rotate finished while the slow Load still runs
		case <-time.After(300 * time.Millisecond): // Rotate waits for it
		}
		close(release)
		if err := <-slow; err != nil {
			t.Fatal(err)
		}
		if r.kid == "" && r.err == nil {
			r = <-rot
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := activeKIDs(t, m)[EdDSA]; got != r.kid {
			t.Fatalf("after Rotate(immediate) returned, the manager signs with %s, want the new key %s (a stale Load overwrote the set)", got, r.kid)
		}
	})
}
