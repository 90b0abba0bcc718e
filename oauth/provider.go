package oauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
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
}

// Endpoint paths (the URL contract; discovery derives its URLs from them).
const (
	PathToken          = "/oauth2/token"
	PathJWKS           = "/.well-known/jwks.json"
	PathOIDCDiscovery  = "/.well-known/openid-configuration"
	PathOAuthDiscovery = "/.well-known/oauth-authorization-server"
)

// Grant types the token endpoint accepts.
const GrantClientCredentials = "client_credentials"

// SupportedGrantTypes lists what clients may be registered with.
var SupportedGrantTypes = []string{GrantClientCredentials}

// jwks is what the JWKS endpoint needs from the key manager.
type jwks interface {
	JWKS() (body []byte, etag string)
}

// Provider serves the protocol endpoints.
type Provider struct {
	cfg       Config
	fosite    fosite.OAuth2Provider
	clients   *clientCache
	keys      jwks
	logger    *slog.Logger
	discovery discoveryDocs
	issued    *prometheus.CounterVec
}

// New composes fosite with exactly the grants oauthd offers (never
// compose.ComposeAllEnabled: it enables implicit and password grants and
// opaque access tokens).
func New(cfg Config, st store, km *keys.Manager, hasher fosite.Hasher, reg prometheus.Registerer, logger *slog.Logger) (*Provider, error) {
	if err := ValidateIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if len(cfg.TokenHMACKey) < 32 {
		return nil, errors.New("oauth: token HMAC key must be 32 bytes")
	}
	if cfg.AccessTokenTTL <= 0 {
		return nil, errors.New("oauth: access-token lifetime must be positive")
	}
	clients := newClientCache(st, cfg.ClientCacheTTL)
	fstore := &fositeStore{store: st, clients: clients}

	fcfg := &fosite.Config{
		AccessTokenIssuer:          cfg.Issuer,
		IDTokenIssuer:              cfg.Issuer,
		TokenURL:                   endpoint(cfg.Issuer, PathToken),
		AccessTokenLifespan:        cfg.AccessTokenTTL,
		GlobalSecret:               cfg.TokenHMACKey,
		ScopeStrategy:              fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:   fosite.ExactAudienceMatchingStrategy,
		JWTScopeClaimKey:           jwt.JWTScopeFieldString,
		ClientSecretsHasher:        hasher,
		SendDebugMessagesToClients: false,
		EnforcePKCE:                true,
		RedirectSecureChecker:      fosite.IsRedirectURISecureStrict,
	}
	accessSigner := &signer{sign: km.SignAccessToken, keys: km}
	strategy := &compose.CommonStrategy{
		CoreStrategy: &oauth2.DefaultJWTStrategy{
			Signer:          accessSigner,
			HMACSHAStrategy: compose.NewOAuth2HMACStrategy(fcfg),
			Config:          fcfg,
		},
		// Signs access tokens only. When OpenID Connect is composed, its
		// strategy needs its own signer (km.SignIDToken: ID-token algorithm,
		// typ JWT), never this one.
		Signer: accessSigner,
	}
	var _ oauth2.AccessTokenStorage = fstore // what the client-credentials factory asserts
	f := compose.Compose(fcfg, fstore, strategy,
		compose.OAuth2ClientCredentialsGrantFactory,
	)

	issued := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oauthd_tokens_issued_total",
		Help: "Access tokens issued, by grant type.",
	}, []string{"grant_type"})
	if reg != nil {
		if err := reg.Register(issued); err != nil {
			return nil, fmt.Errorf("oauth: register metrics: %w", err)
		}
	}
	p := &Provider{cfg: cfg, fosite: f, clients: clients, keys: km, logger: logger, issued: issued}
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
