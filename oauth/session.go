package oauth

import (
	"encoding/json"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is our fosite session: the OpenID Connect session (ID-token claims,
// subject, expiry times) plus what our access tokens carry.
//
// It implements fosite's JWTSessionContainer so the JWT access-token strategy
// can build RFC 9068 claims from it, and openid.Session for ID tokens.
type Session struct {
	*openid.DefaultSession `json:"oidc"`
	// ClientID is the client the grant was given to (RFC 9068 client_id).
	ClientID string `json:"client_id"`
	// SessionID is the grant session (sid claim) for user grants; empty for
	// client_credentials.
	SessionID string `json:"sid,omitempty"`
	// UserAgent and IP of the browser that gave the grant, recorded on its
	// grant session (shown on the account page). Never in a token.
	UserAgent string `json:"ua,omitempty"`
	IP        string `json:"ip,omitempty"`

	// refreshToken carries the rotated refresh token from the refresh
	// handler's validation step to its response step (one request).
	refreshToken string
}

var (
	_ fosite.Session     = (*Session)(nil)
	_ openid.Session     = (*Session)(nil)
	_ jwtSessionContract = (*Session)(nil)
)

// jwtSessionContract restates fosite's oauth2.JWTSessionContainer so the
// compile-time check above does not need the oauth2 handler package here.
type jwtSessionContract interface {
	GetJWTClaims() jwt.JWTClaimsContainer
	GetJWTHeader() *jwt.Headers
}

// newSession returns an empty session for fosite to fill.
func newSession() *Session {
	return &Session{DefaultSession: &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{},
		Headers: &jwt.Headers{},
	}}
}

// GetJWTClaims builds fresh access-token claims on every call: fosite mutates
// the container it gets (With, WithDefaults), and a persisted one would leak
// a jti or expiry from one token into the next. jti is left empty so fosite
// generates a new one per token.
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	extra := map[string]interface{}{"client_id": s.ClientID}
	if s.SessionID != "" {
		extra["sid"] = s.SessionID
	}
	return &jwt.JWTClaims{
		Subject:    s.Subject,
		Extra:      extra,
		ScopeField: jwt.JWTScopeFieldString,
	}
}

// GetJWTHeader returns no extra headers: the signer sets typ (at+jwt) and the
// kid of the key that actually signs, at signing time.
func (s *Session) GetJWTHeader() *jwt.Headers { return &jwt.Headers{} }

// Clone returns a deep copy (fosite clones the stored session on refresh).
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	c := newSession()
	if err := json.Unmarshal(b, c); err != nil {
		return nil
	}
	return c
}
