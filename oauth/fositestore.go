package oauth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ory/fosite"
	"golang.org/x/sync/singleflight"

	"github.com/oauthd/oauthd/storage"
)

// store is what the protocol needs from persistence (*storage.Store).
type store interface {
	GetClient(ctx context.Context, id string) (*storage.Client, error)
	UseJTI(ctx context.Context, jti string, exp time.Time) error
	JTIUsed(ctx context.Context, jti string) (bool, error)

	CreateAuthorizationCode(ctx context.Context, c *storage.AuthorizationCode) error
	GetAuthorizationCode(ctx context.Context, signature string) (*storage.AuthorizationCode, error)
	InvalidateAuthorizationCode(ctx context.Context, signature string, now time.Time) error
	RedeemAuthorizationCode(ctx context.Context, r storage.Redemption) error
	CreateOIDCRequest(ctx context.Context, r *storage.OIDCRequest) error
	GetOIDCRequest(ctx context.Context, codeHash string) (*storage.OIDCRequest, error)
	DeleteOIDCRequest(ctx context.Context, codeHash string) error
	CreatePAR(ctx context.Context, p *storage.PARRequest) error
	TakePAR(ctx context.Context, hash string, now time.Time) (*storage.PARRequest, error)

	GetGrantSession(ctx context.Context, id string) (*storage.GrantSession, error)
	RevokeGrantSession(ctx context.Context, id, reason string, now time.Time) error
	CreateRefreshToken(ctx context.Context, t *storage.RefreshToken) error
	GetRefreshToken(ctx context.Context, signature string) (*storage.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, req storage.RotateRequest) (storage.RotateResult, error)

	DenyAccessToken(ctx context.Context, jti string, exp, now time.Time) error
	AccessTokenStatus(ctx context.Context, jti, sid string, now time.Time) (denied, sessionLive bool, err error)

	GetUser(ctx context.Context, id string) (*storage.User, error)
	GetConsent(ctx context.Context, userID, clientID string) (*storage.Consent, error)
	GrantConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error
}

// errUnavailable marks storage failures that must answer 503
// temporarily_unavailable instead of the OAuth error fosite would pick.
var errUnavailable = errors.New("oauth: storage unavailable")

// fositeStore adapts our storage to fosite's storage interfaces. Access
// tokens are self-contained JWTs: issuing one writes nothing (revocation by
// jti denylist and by grant session is checked elsewhere), which is why the
// access-token methods below store nothing.
type fositeStore struct {
	store   store
	clients *clientCache
	cfg     Config
	logger  *slog.Logger
}

var _ fosite.ClientManager = (*fositeStore)(nil)

// GetClient returns the client from the cache. Unknown clients answer
// fosite.ErrNotFound; any other storage failure is marked errUnavailable.
func (f *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := f.clients.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ClientAssertionJWTValid reports whether a client-assertion jti is unused.
func (f *fositeStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	used, err := f.store.JTIUsed(ctx, jti)
	switch {
	case err != nil:
		return errors.Join(errUnavailable, err)
	case used:
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT records a client-assertion jti; a concurrent second
// use fails on the primary key.
func (f *fositeStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := f.store.UseJTI(ctx, jti, exp)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return fosite.ErrJTIKnown
	case err != nil:
		return errors.Join(errUnavailable, err)
	}
	return nil
}

// CreateAccessTokenSession stores nothing: the JWT carries everything.
func (f *fositeStore) CreateAccessTokenSession(context.Context, string, fosite.Requester) error {
	return nil
}

// GetAccessTokenSession: access tokens are never looked up by signature; JWT
// validation and the denylist decide.
func (f *fositeStore) GetAccessTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}

// DeleteAccessTokenSession has nothing to delete.
func (f *fositeStore) DeleteAccessTokenSession(context.Context, string) error { return nil }

// clientCache keeps parsed clients for ttl. Every token request looks its
// client up; the cache makes that a map read. Staleness is bounded by ttl on
// other processes; on this one, Invalidate is called on every change. Unknown
// ids are cached too, so a flood of made-up client ids does not reach the
// database more than once per id and ttl.
type clientCache struct {
	store clientLookup
	ttl   time.Duration
	max   int
	now   func() time.Time

	mu      sync.RWMutex
	entries map[string]cacheEntry
	// gen counts invalidations: a lookup that started before one must not
	// put what it read, or a change made here would be undone for one ttl.
	gen   uint64
	group singleflight.Group
}

type cacheEntry struct {
	client  *client // nil: known not to exist
	expires time.Time
}

// clientLookup is what the client cache reads.
type clientLookup interface {
	GetClient(ctx context.Context, id string) (*storage.Client, error)
}

func newClientCache(st clientLookup, ttl time.Duration) *clientCache {
	return &clientCache{store: st, ttl: ttl, max: 10000, now: time.Now, entries: map[string]cacheEntry{}}
}

func (c *clientCache) get(ctx context.Context, id string) (*client, error) {
	if !plausibleClientID(id) {
		// No stored id looks like this, and PostgreSQL would reject NUL or
		// invalid UTF-8 with an error that is not "not found".
		return nil, fosite.ErrNotFound
	}
	if c.ttl > 0 {
		c.mu.RLock()
		e, ok := c.entries[id]
		c.mu.RUnlock()
		if ok && c.now().Before(e.expires) {
			if e.client == nil {
				return nil, fosite.ErrNotFound
			}
			return e.client, nil
		}
	}
	v, err, _ := c.group.Do(id, func() (interface{}, error) {
		// The lookup is shared by every request waiting on this id: it must
		// not fail because the first of them went away.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		gen := c.generation()
		rec, err := c.store.GetClient(lctx, id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			c.put(id, nil, gen)
			return (*client)(nil), nil
		case err != nil:
			return nil, err
		}
		cl := newClient(rec)
		c.put(id, cl, gen)
		return cl, nil
	})
	if err != nil {
		return nil, errors.Join(errUnavailable, err)
	}
	cl := v.(*client)
	if cl == nil {
		return nil, fosite.ErrNotFound
	}
	return cl, nil
}

// lookupTimeout bounds one client lookup in the database.
const lookupTimeout = 5 * time.Second

func (c *clientCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches cl unless the cache was invalidated since gen was read.
func (c *clientCache) put(id string, cl *client, gen uint64) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= c.max {
		c.entries = map[string]cacheEntry{} // crude but bounded; refills within one ttl
	}
	c.entries[id] = cacheEntry{client: cl, expires: c.now().Add(c.ttl)}
}

// plausibleClientID rejects ids no client can have without asking the
// database: empty, too long, NUL or invalid UTF-8.
func plausibleClientID(id string) bool {
	return id != "" && len(id) <= 256 && utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// Invalidate drops a client from the cache after it changed here.
func (c *clientCache) Invalidate(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.gen++
	c.mu.Unlock()
}
