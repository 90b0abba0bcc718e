package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// accessClaims are the claims of our JWT access tokens (RFC 9068) that the
// endpoints reading them use.
type accessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	JTI       string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope"`
	SessionID string   `json:"sid"`
}

// audience accepts aud as a string or an array (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// maxTokenLength bounds what is parsed at all (a JWT of ours is < 2 KiB).
const maxTokenLength = 8 << 10

var (
	errTokenInvalid = errors.New("oauth: token invalid")
	errTokenExpired = errors.New("oauth: token expired")
)

// parseAccessToken verifies an access token's signature (by kid, against
// every published key), its type (at+jwt, so an ID token is never taken for
// an access token, RFC 9068 §4) and issuer. Expiry is reported as
// errTokenExpired with the claims, for revocation of expired tokens.
func (p *Provider) parseAccessToken(ctx context.Context, token string) (*accessClaims, error) {
	if len(token) > maxTokenLength || strings.Count(token, ".") != 2 {
		return nil, errTokenInvalid
	}
	now := time.Now()
	if c, ok := p.verified.get(token, now); ok {
		return c, nil
	}
	v, err := p.jwtKeys.Verify(ctx, token)
	if err != nil {
		return nil, errTokenInvalid
	}
	if v.Typ != "at+jwt" {
		return nil, errTokenInvalid
	}
	var c accessClaims
	if err := json.Unmarshal(v.Payload, &c); err != nil || c.Issuer != p.cfg.Issuer || c.JTI == "" || c.ExpiresAt == 0 {
		return nil, errTokenInvalid
	}
	if !now.Before(time.Unix(c.ExpiresAt, 0)) {
		return &c, errTokenExpired
	}
	p.verified.put(token, &c, now)
	return &c, nil
}

// accessTokenActive reports whether a verified, unexpired access token is
// still active: not revoked by jti, and its grant session (if any) live.
// One database round trip.
func (p *Provider) accessTokenActive(ctx context.Context, c *accessClaims) (bool, error) {
	denied, live, err := p.store.AccessTokenStatus(ctx, c.JTI, c.SessionID, time.Now())
	if err != nil {
		return false, errors.Join(errUnavailable, err)
	}
	return !denied && live, nil
}
