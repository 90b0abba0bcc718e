package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oauthd/oauthd/keys"
)

// Config is the protocol configuration.
type Config struct {
	// Issuer is the issuer URL exactly as it appears in iss and discovery.
	Issuer string
	// AccessTokenTTL is the access-token lifetime.
	AccessTokenTTL time.Duration
	// ClientCacheTTL bounds how long a changed or deleted client keeps
	// working on a process that did not make the change.
	ClientCacheTTL time.Duration
	// TokenHMACKey signs opaque tokens (codes, refresh tokens); 32 bytes.
	TokenHMACKey []byte
	// AccessTokenAlg and IDTokenAlg name the signing algorithms (discovery).
	AccessTokenAlg string
	IDTokenAlg     string
	// JWKSMaxAge is the Cache-Control max-age of the JWKS answer.
	JWKSMaxAge time.Duration

	// RefreshTokenTTL is the refresh-token lifetime and the idle lifetime
	// of a grant session with refresh tokens.
	RefreshTokenTTL time.Duration
	// RefreshReuseWindow: a rotated refresh token presented again within
	// it gets the same successor (contract: OAUTHD_REFRESH_REUSE_WINDOW).
	RefreshReuseWindow time.Duration
	// GrantSessionMaxLifetime is the absolute lifetime of a grant session.
	GrantSessionMaxLifetime time.Duration
	// AuthorizeCodeTTL, IDTokenTTL, PARTTL: lifetimes of authorization
	// codes, ID tokens and pushed authorization requests.
	AuthorizeCodeTTL time.Duration
	IDTokenTTL       time.Duration
	PARTTL           time.Duration
	// SealKey encrypts what travels through the browser between our own
	// endpoints (the pending authorization request while the person signs
	// in) and the successor refresh token kept for the reuse window; 32
	// bytes.
	SealKey []byte
}

// withDefaults fills unset lifetimes.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RefreshTokenTTL, 720*time.Hour)
	def(&c.GrantSessionMaxLifetime, 2160*time.Hour)
	def(&c.AuthorizeCodeTTL, time.Minute)
	def(&c.IDTokenTTL, time.Hour)
	def(&c.PARTTL, 90*time.Second)
	return c
}

// Endpoint paths (the URL contract; discovery derives its URLs from them).
const (
	PathAuthorize      = "/oauth2/authorize"
	PathConsent        = "/consent"
	PathRevoke         = "/oauth2/revoke"
	PathIntrospect     = "/oauth2/introspect"
	PathUserinfo       = "/userinfo"
	PathLogout         = "/oauth2/logout"
	PathPAR            = "/oauth2/par"
	PathToken          = "/oauth2/token"
	PathJWKS           = "/.well-known/jwks.json"
	PathOIDCDiscovery  = "/.well-known/openid-configuration"
	PathOAuthDiscovery = "/.well-known/oauth-authorization-server"
)

// Grant types the token endpoint accepts.
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

// Scopes with a meaning of their own.
const (
	ScopeOpenID        = "openid"
	ScopeOfflineAccess = "offline_access"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
)

// SupportedGrantTypes lists what clients may be registered with.
var SupportedGrantTypes = []string{GrantAuthorizationCode, GrantClientCredentials, GrantRefreshToken}

// jwks is what the JWKS endpoint needs from the key manager.
type jwks interface {
	JWKS() (body []byte, etag string)
}

// Provider serves the protocol endpoints.
type Provider struct {
	cfg     Config
	fosite  *fosite.Fosite
	store   store
	browser Browser
	jwtKeys verifier
	hmac    refreshStrategy
	seal    *sealer
	fstore  *fositeStore
	// verified caches the signature checks of access tokens (verifycache.go).
	verified *verifiedTokens
	// parPrefix starts every request_uri our PAR endpoint issues.
	parPrefix string
	clients   *clientCache
	keys      jwks
	logger    *slog.Logger
	discovery discoveryDocs
	issued    *prometheus.CounterVec
}

// New composes fosite with exactly the grants oauthd offers (never
// compose.ComposeAllEnabled: it enables implicit and password grants and
// opaque access tokens).
func New(cfg Config, st store, km *keys.Manager, browser Browser, hasher fosite.Hasher, reg prometheus.Registerer, logger *slog.Logger) (*Provider, error) {
	cfg = cfg.withDefaults()
	if err := ValidateIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if len(cfg.TokenHMACKey) < 32 {
		return nil, errors.New("oauth: token HMAC key must be 32 bytes")
	}
	if cfg.AccessTokenTTL <= 0 {
		return nil, errors.New("oauth: access-token lifetime must be positive")
	}
	if browser == nil {
		return nil, errors.New("oauth: a Browser (the sign-in pages) is required")
	}
	seal, err := newSealer(cfg.SealKey)
	if err != nil {
		return nil, err
	}
	clients := newClientCache(st, cfg.ClientCacheTTL)
	fstore := &fositeStore{store: st, clients: clients, cfg: cfg, logger: logger}

	fcfg := &fosite.Config{
		AccessTokenIssuer:              cfg.Issuer,
		IDTokenIssuer:                  cfg.Issuer,
		TokenURL:                       endpoint(cfg.Issuer, PathToken),
		AccessTokenLifespan:            cfg.AccessTokenTTL,
		RefreshTokenLifespan:           cfg.RefreshTokenTTL,
		AuthorizeCodeLifespan:          cfg.AuthorizeCodeTTL,
		IDTokenLifespan:                cfg.IDTokenTTL,
		PushedAuthorizeContextLifespan: cfg.PARTTL,
		// Only offline_access asks for a refresh token (not fosite's
		// extra "offline").
		RefreshTokenScopes:         []string{ScopeOfflineAccess},
		AllowedPromptValues:        []string{"login", "none", "consent"},
		GlobalSecret:               cfg.TokenHMACKey,
		ScopeStrategy:              fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:   fosite.ExactAudienceMatchingStrategy,
		JWTScopeClaimKey:           jwt.JWTScopeFieldString,
		ClientSecretsHasher:        hasher,
		SendDebugMessagesToClients: false,
		EnforcePKCE:                true,
		// The form values the code's stored request keeps: fosite's own
		// (redirect_uri is compared at the exchange), and the PKCE
		// challenge, as the code is its own PKCE binding (see
		// CreatePKCERequestSession): an exchange reads one row, not two.
		SanitationWhiteList:   []string{"code", "redirect_uri", "code_challenge", "code_challenge_method"},
		RedirectSecureChecker: fosite.IsRedirectURISecureStrict,
	}
	accessSigner := &signer{sign: km.SignAccessToken, keys: km}
	idSigner := &signer{sign: km.SignIDToken, keys: km}
	hmacStrategy := compose.NewOAuth2HMACStrategy(fcfg)
	strategy := &compose.CommonStrategy{
		CoreStrategy: &oauth2.DefaultJWTStrategy{
			Signer:          accessSigner,
			HMACSHAStrategy: hmacStrategy,
			Config:          fcfg,
		},
		// ID tokens: the ID-token algorithm and typ JWT.
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: idSigner, Config: fcfg},
		// The jwt.Signer fosite asserts on the strategy decodes
		// id_token_hint; it verifies by kid against every published key,
		// whatever signer signed.
		Signer: accessSigner,
	}
	p := &Provider{cfg: cfg, store: st, browser: browser, jwtKeys: km, hmac: hmacStrategy, seal: seal, fstore: fstore, verified: newVerifiedTokens(50000)}
	refresh := &refreshHandler{p: p, strategy: strategy, store: st}
	// Order matters (fosite guide §1.1): PKCE and OIDC read the code the
	// explicit handler made; OIDC refresh runs after our refresh handler.
	composed := compose.Compose(fcfg, fstore, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		func(fosite.Configurator, interface{}, interface{}) interface{} { return refresh },
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	for i, h := range fcfg.TokenEndpointHandlers {
		fcfg.TokenEndpointHandlers[i] = askOnlyWhenCan(h)
	}
	p.parPrefix = fcfg.GetPushedAuthorizeRequestURIPrefix(context.Background())
	f, ok := composed.(*fosite.Fosite)
	if !ok {
		return nil, fmt.Errorf("oauth: unexpected provider type %T", composed)
	}

	issued := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oauthd_tokens_issued_total",
		Help: "Access tokens issued, by grant type.",
	}, []string{"grant_type"})
	if reg != nil {
		if err := reg.Register(issued); err != nil {
			return nil, fmt.Errorf("oauth: register metrics: %w", err)
		}
	}
	p.fosite, p.clients, p.keys, p.logger, p.issued = f, clients, km, logger, issued
	docs, err := buildDiscovery(cfg)
	if err != nil {
		return nil, err
	}
	p.discovery = docs
	return p, nil
}

// InvalidateClient drops a client from this process's cache; call it after
// a client is changed or deleted.
func (p *Provider) InvalidateClient(id string) { p.clients.Invalidate(id) }

// ValidateIssuer enforces OIDC Discovery §3 / RFC 8414 §2: an https URL (or
// http on loopback for development) with no query or fragment.
func ValidateIssuer(iss string) error {
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" {
		return fmt.Errorf("issuer %q is not an absolute URL", iss)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.ForceQuery {
		return fmt.Errorf("issuer %q must not have a query, fragment or user info", iss)
	}
	if u.Path != "" && u.Path != "/" {
		// Endpoints are served at the root; an issuer with a path would need
		// the RFC 8414 §3.1 path-suffixed well-known locations too.
		return fmt.Errorf("issuer %q must not have a path (endpoints are served at the root)", iss)
	}
	switch u.Scheme {
	case "https":
	case "http":
		// Plain http only where no network sits between client and server.
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" && !strings.HasSuffix(h, ".localhost") {
			return fmt.Errorf("issuer %q must use https (http is allowed only for localhost)", iss)
		}
	default:
		return fmt.Errorf("issuer %q must use https", iss)
	}
	return nil
}

// askOnlyWhenCan wraps one of the token endpoint's handlers so it is
// asked only about requests it handles. fosite asks every handler to
// populate every response, and its handlers answer a request that is not
// theirs with an error carrying a stack trace (so does its OpenID Connect
// refresh handler for a grant without openid): four of them per refresh,
// 6.6 % of the server's CPU in a refresh profile.
func askOnlyWhenCan(h fosite.TokenEndpointHandler) fosite.TokenEndpointHandler {
	switch h := h.(type) {
	case *refreshHandler:
		return h // ours answers a bare ErrUnknownRequest
	case *openid.OpenIDConnectExplicitHandler:
		// Nothing to do at the request step; at the response it looks up
		// an OpenID request row, so ask it only when openid was granted
		// (the explicit grant handler, which runs first, has granted the
		// code's scopes to the request by then).
		return whenCan{h, ScopeOpenID, true}
	case *openid.OpenIDConnectRefreshHandler:
		return whenCan{h, ScopeOpenID, false}
	default:
		return whenCan{h, "", false}
	}
}

// whenCan is askOnlyWhenCan's wrapper: the handler is asked when it can
// handle the grant type and, if scope is set, the scope was granted.
type whenCan struct {
	fosite.TokenEndpointHandler
	scope string
	// responseOnly: the handler has nothing to do at the request step.
	responseOnly bool
}

func (h whenCan) asked(ctx context.Context, r fosite.AccessRequester) bool {
	return h.CanHandleTokenEndpointRequest(ctx, r) && (h.scope == "" || r.GetGrantedScopes().Has(h.scope))
}

func (h whenCan) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if h.responseOnly || !h.asked(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, r)
}

func (h whenCan) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.asked(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, r, resp)
}
