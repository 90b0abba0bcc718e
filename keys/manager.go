package keys

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/storage"
)

// store is what the key manager needs from persistence.
type store interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	UpdateSigningKeys(ctx context.Context, decide func(current []storage.SigningKey) (storage.KeyChange, error)) error
}

// Errors callers may check.
var (
	// ErrNoKey: no key for the algorithm is active (yet).
	ErrNoKey = errors.New("keys: no active signing key")
	// ErrUnknownKey: the token names a kid that is not published.
	ErrUnknownKey = errors.New("keys: unknown key id")
	// ErrInvalidSignature: the token is not a valid JWS from one of our keys.
	ErrInvalidSignature = errors.New("keys: invalid token signature")
)

// Manager holds the decrypted key set in memory, signs with the active key of
// each algorithm, verifies by kid and serves the JWKS. It is safe for
// concurrent use; the hot paths (Sign, Verify, JWKS) take no lock and touch
// no database.
type Manager struct {
	cfg    Config
	store  store
	aead   cipher.AEAD
	logger *slog.Logger
	now    func() time.Time

	set atomic.Pointer[keySet]

	// loadMu serialises Load: a slow Load that read the rows before a
	// rotation must not store its older set over the newer one.
	loadMu sync.Mutex

	reloadMu   sync.Mutex
	lastReload time.Time
}

// keySet is an immutable snapshot of the keys at one moment.
type keySet struct {
	all       []*Key          // every stored key, by activation time
	published map[string]*Key // kid → key in the JWKS
	active    map[string]*Key // alg → key that signs
	jwks      []byte
	etag      string
	// validUntil is the next activation or retirement: the snapshot must be
	// recomputed from all at that moment.
	validUntil time.Time
}

// New returns a manager for a complete configuration (see
// Config.WithDefaults). It does no I/O: call Init (or Load) before use.
func New(cfg Config, st store, master []byte, logger *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	aead, err := newAEAD(secret.Derive(master, secret.KeyEncryption))
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, store: st, aead: aead, logger: logger, now: time.Now}, nil
}

// SetClock replaces the clock (tests).
func (m *Manager) SetClock(now func() time.Time) { m.now = now }

// Config returns the effective configuration.
func (m *Manager) Config() Config { return m.cfg }

// Init makes sure every configured algorithm has a key (creating the first
// keys on first start, active at once, and scheduling retirement of keys of
// algorithms no longer configured), then loads the set.
func (m *Manager) Init(ctx context.Context) error {
	if err := m.store.UpdateSigningKeys(ctx, func(current []storage.SigningKey) (storage.KeyChange, error) {
		return m.planScheduled(current, m.now().UTC())
	}); err != nil {
		return fmt.Errorf("initialise signing keys: %w", err)
	}
	return m.Load(ctx)
}

// Load re-reads the key set from the database. Keys already in memory are
// not decrypted again.
func (m *Manager) Load(ctx context.Context) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	recs, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	old := map[string]*Key{}
	if cur := m.set.Load(); cur != nil {
		for _, k := range cur.all {
			old[k.KID] = k
		}
	}
	all := make([]*Key, 0, len(recs))
	for _, r := range recs {
		if k, ok := old[r.KID]; ok {
			k2 := *k // metadata (retirement) may have changed; key material cannot
			k2.RetiresAt = r.RetiresAt
			all = append(all, &k2)
			continue
		}
		k, err := parseRecord(m.aead, r)
		if err != nil {
			return err
		}
		all = append(all, k)
	}
	m.set.Store(buildSet(all, m.cfg, m.now().UTC()))
	m.reloadMu.Lock()
	m.lastReload = m.now()
	m.reloadMu.Unlock()
	return nil
}

// buildSet derives what is published and what signs from the keys and now.
func buildSet(all []*Key, cfg Config, now time.Time) *keySet {
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if !a.ActivatesAt.Equal(b.ActivatesAt) {
			return a.ActivatesAt.Before(b.ActivatesAt)
		}
		// Same activation: a superseded (retiring) key sorts first, so the
		// key that superseded it signs, whatever the kids' order.
		return a.RetiresAt != nil && b.RetiresAt == nil
	})
	s := &keySet{all: all, published: map[string]*Key{}, active: map[string]*Key{}}
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	var pub []json.RawMessage
	for _, k := range all {
		consider(k.ActivatesAt)
		if k.RetiresAt != nil {
			consider(*k.RetiresAt)
			if !now.Before(*k.RetiresAt) {
				continue // retired: no longer published, no longer signs
			}
		}
		s.published[k.KID] = k
		pub = append(pub, k.jwk)
		if !k.ActivatesAt.After(now) {
			s.active[k.Alg] = k // sorted by activation: the last one wins
		}
	}
	if pub == nil {
		pub = []json.RawMessage{}
	}
	s.jwks, _ = json.Marshal(struct {
		Keys []json.RawMessage `json:"keys"`
	}{pub})
	s.etag = etagOf(s.jwks)
	s.validUntil = next
	return s
}

// current returns the snapshot valid now, recomputing it when an activation
// or retirement time has passed since it was built.
func (m *Manager) current() *keySet {
	s := m.set.Load()
	if s == nil {
		return &keySet{published: map[string]*Key{}, active: map[string]*Key{}, jwks: []byte(`{"keys":[]}`), etag: etagOf([]byte(`{"keys":[]}`))}
	}
	if !s.validUntil.IsZero() {
		now := m.now().UTC()
		if !now.Before(s.validUntil) {
			ns := buildSet(append([]*Key(nil), s.all...), m.cfg, now)
			m.set.CompareAndSwap(s, ns)
			return ns
		}
	}
	return s
}

// Active returns the key that signs for alg now.
func (m *Manager) Active(alg string) (*Key, error) {
	k, ok := m.current().active[alg]
	if !ok {
		return nil, fmt.Errorf("%w for %s", ErrNoKey, alg)
	}
	return k, nil
}

// Ready reports whether every configured algorithm has an active key.
func (m *Manager) Ready() error {
	for _, alg := range m.cfg.algs() {
		if _, err := m.Active(alg); err != nil {
			return err
		}
	}
	return nil
}

// SignAccessToken signs JWT claims with the active access-token key, header
// typ "at+jwt" (RFC 9068). The kid in the header is the key's.
func (m *Manager) SignAccessToken(claims []byte) (string, error) {
	return m.Sign(m.cfg.AccessTokenAlg, "at+jwt", claims)
}

// SignIDToken signs ID-token claims with the active ID-token key, typ "JWT".
func (m *Manager) SignIDToken(claims []byte) (string, error) {
	return m.Sign(m.cfg.IDTokenAlg, "JWT", claims)
}

// Sign signs payload with the active key of alg and header typ.
func (m *Manager) Sign(alg, typ string, payload []byte) (string, error) {
	k, err := m.Active(alg)
	if err != nil {
		return "", err
	}
	return k.sign(typ, payload)
}

// allowedAlgs are the algorithms Verify accepts; "none" and HMAC never are.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// maxTokenLength bounds what Verify parses (go-jose CVE-2025-27144 class).
const maxTokenLength = 16 << 10

// Verified is a token whose signature checked out against a published key.
type Verified struct {
	KID     string
	Alg     string
	Typ     string
	Payload []byte
}

// Verify checks token's signature against the published key its kid names.
// An unknown kid triggers one reload from the database (at most once a
// second), so a key another process just created is found.
func (m *Manager) Verify(ctx context.Context, token string) (*Verified, error) {
	if len(token) > maxTokenLength {
		return nil, fmt.Errorf("%w: token too long", ErrInvalidSignature)
	}
	// JWTs use the compact serialization only (RFC 7519 §7.2).
	jws, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrInvalidSignature)
	}
	h := jws.Signatures[0].Header
	k, ok := m.current().published[h.KeyID]
	if !ok {
		if m.reloadForUnknownKID(ctx) {
			k, ok = m.current().published[h.KeyID]
		}
		if !ok {
			return nil, ErrUnknownKey
		}
	}
	if h.Algorithm != k.Alg {
		return nil, fmt.Errorf("%w: algorithm %s does not match key %s", ErrInvalidSignature, h.Algorithm, k.KID)
	}
	payload, err := jws.Verify(k.public)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return &Verified{KID: k.KID, Alg: k.Alg, Typ: typ, Payload: payload}, nil
}

func (m *Manager) reloadForUnknownKID(ctx context.Context) bool {
	m.reloadMu.Lock()
	now := m.now()
	recent := now.Sub(m.lastReload) < time.Second
	if !recent {
		// Claim this second's reload before doing it, so a flood of
		// unknown kids arriving together reloads once, not once each.
		m.lastReload = now
	}
	m.reloadMu.Unlock()
	if recent {
		return false
	}
	if err := m.Load(ctx); err != nil {
		m.logger.WarnContext(ctx, "reload signing keys for unknown kid failed", "err", err)
		return false
	}
	return true
}

// JWKS returns the prepared JWKS document and its ETag.
func (m *Manager) JWKS() (body []byte, etag string) {
	s := m.current()
	return s.jwks, s.etag
}

// Info describes a key without its private part.
type Info struct {
	KID         string          `json:"kid"`
	Alg         string          `json:"alg"`
	Status      string          `json:"status"` // "pending", "active", "retiring", "retired"
	CreatedAt   time.Time       `json:"created_at"`
	ActivatesAt time.Time       `json:"activates_at"`
	RetiresAt   *time.Time      `json:"retires_at,omitempty"`
	PublicJWK   json.RawMessage `json:"public_jwk"`
}

// List describes every stored key, straight from the database.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	if err := m.Load(ctx); err != nil {
		return nil, err
	}
	s := m.current()
	now := m.now().UTC()
	out := make([]Info, 0, len(s.all))
	for _, k := range s.all {
		st := "retiring"
		switch {
		case k.RetiresAt != nil && !now.Before(*k.RetiresAt):
			st = "retired"
		case k.ActivatesAt.After(now):
			st = "pending"
		case s.active[k.Alg] == k:
			st = "active"
		}
		out = append(out, Info{KID: k.KID, Alg: k.Alg, Status: st, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiresAt: k.RetiresAt, PublicJWK: k.jwk})
	}
	return out, nil
}

// ActiveAges returns, per configured algorithm, how long its active key has
// been signing (for the signing-key age metric).
func (m *Manager) ActiveAges() map[string]time.Duration {
	s := m.current()
	now := m.now()
	out := map[string]time.Duration{}
	for alg, k := range s.active {
		out[alg] = now.Sub(k.ActivatesAt)
	}
	return out
}
