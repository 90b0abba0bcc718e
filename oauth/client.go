package oauth

import (
	"strings"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/oauthd/oauthd/storage"
)

// Token endpoint authentication methods (RFC 7591 §2).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// client adapts a stored client to the fosite client interfaces. It is
// immutable and shared through the client cache.
type client struct {
	rec      *storage.Client
	scopes   fosite.Arguments
	hashed   []byte
	previous []byte
}

var (
	_ fosite.Client                   = (*client)(nil)
	_ fosite.OpenIDConnectClient      = (*client)(nil)
	_ fosite.ClientWithSecretRotation = (*client)(nil)
)

func newClient(rec *storage.Client) *client {
	c := &client{rec: rec, scopes: strings.Fields(rec.Scope), hashed: []byte(rec.SecretHash)}
	if rec.PreviousSecretHash != "" {
		c.previous = []byte(rec.PreviousSecretHash)
	}
	return c
}

func (c *client) GetID() string                   { return c.rec.ID }
func (c *client) GetHashedSecret() []byte         { return c.hashed }
func (c *client) GetRedirectURIs() []string       { return c.rec.RedirectURIs }
func (c *client) GetGrantTypes() fosite.Arguments { return c.rec.GrantTypes }
func (c *client) GetScopes() fosite.Arguments     { return c.scopes }
func (c *client) IsPublic() bool                  { return c.rec.TokenEndpointAuthMethod == AuthMethodNone }
func (c *client) GetAudience() fosite.Arguments   { return c.rec.Audience }

// GetResponseTypes returns the registered response types. Unlike fosite's
// DefaultClient there is no fallback to "code": a client registered without
// it cannot use the authorization endpoint.
func (c *client) GetResponseTypes() fosite.Arguments { return c.rec.ResponseTypes }

// GetRotatedHashes returns the previous secret's hash while its grace period
// after a rotation lasts.
func (c *client) GetRotatedHashes() [][]byte {
	if c.previous == nil || c.rec.PreviousSecretExpiresAt == nil || !time.Now().Before(*c.rec.PreviousSecretExpiresAt) {
		return nil
	}
	return [][]byte{c.previous}
}

// GetTokenEndpointAuthMethod makes fosite enforce the registered method: a
// client_secret_basic client cannot authenticate in the body and vice versa.
func (c *client) GetTokenEndpointAuthMethod() string { return c.rec.TokenEndpointAuthMethod }

// The remaining OpenIDConnectClient methods describe features oauthd does
// not offer (request objects, private_key_jwt); they answer "none".
func (c *client) GetRequestURIs() []string                     { return nil }
func (c *client) GetJSONWebKeys() *josev3.JSONWebKeySet        { return nil }
func (c *client) GetJSONWebKeysURI() string                    { return "" }
func (c *client) GetRequestObjectSigningAlgorithm() string     { return "" }
func (c *client) GetTokenEndpointAuthSigningAlgorithm() string { return "" }
