package oauth

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/storage"
)

// introspection is the RFC 7662 §2.2 answer.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	JTI       string   `json:"jti,omitempty"`
}

var inactive = introspection{Active: false}

// introspect serves POST /oauth2/introspect (RFC 7662). The caller must be a
// confidential client (basic or post); it may introspect tokens issued to
// it, and a client registered with allow_introspection (a resource server)
// any token. Access tokens are checked for signature, type, issuer and
// expiry, then against the jti denylist and their grant session in one
// database round trip; refresh tokens are looked up. Anything the caller may
// not see is simply inactive. A database failure answers 503, never
// active:false.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	c, ok := p.postEndpoint(w, r)
	if !ok {
		return
	}
	if c.IsPublic() {
		p.writeError(w, r, &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client",
			Description: "Introspection requires a confidential client."})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		p.writeError(w, r, invalidRequest("The request parameter 'token' is missing."))
		return
	}
	res, err := p.introspectToken(r, c, token)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	httpx.NoStore(w)
	httpx.WriteJSON(w, http.StatusOK, res)
}

func (p *Provider) introspectToken(r *http.Request, caller *client, token string) (introspection, error) {
	ctx := r.Context()
	if strings.Count(token, ".") == 2 {
		claims, err := p.parseAccessToken(ctx, token)
		if err != nil {
			if errors.Is(err, errUnavailable) {
				return inactive, err
			}
			return inactive, nil
		}
		if claims.ClientID != caller.GetID() && !caller.rec.AllowIntrospection {
			return inactive, nil
		}
		active, err := p.accessTokenActive(ctx, claims)
		if err != nil || !active {
			return inactive, err
		}
		return introspection{
			Active: true, Scope: claims.Scope, ClientID: claims.ClientID, Subject: claims.Subject,
			ExpiresAt: claims.ExpiresAt, IssuedAt: claims.IssuedAt, TokenType: "Bearer",
			SessionID: claims.SessionID, Audience: claims.Audience, Issuer: claims.Issuer, JTI: claims.JTI,
		}, nil
	}
	if len(token) > 512 || p.hmac.ValidateRefreshToken(ctx, emptyRequest(), token) != nil {
		return inactive, nil
	}
	row, err := p.store.GetRefreshToken(ctx, p.hmac.RefreshTokenSignature(ctx, token))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return inactive, nil
	case err != nil:
		return inactive, errors.Join(errUnavailable, err)
	}
	now := time.Now()
	if row.State != storage.TokenActive || !now.Before(row.ExpiresAt) ||
		(row.ClientID != caller.GetID() && !caller.rec.AllowIntrospection) {
		return inactive, nil
	}
	gs, err := p.store.GetGrantSession(ctx, row.SessionID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return inactive, nil
	case err != nil:
		return inactive, errors.Join(errUnavailable, err)
	case !gs.Live(now):
		return inactive, nil
	}
	return introspection{
		Active: true, Scope: gs.Scope, ClientID: row.ClientID, Subject: gs.UserID,
		ExpiresAt: row.ExpiresAt.Unix(), IssuedAt: row.CreatedAt.Unix(), TokenType: "refresh_token",
		SessionID: gs.ID, Audience: gs.Audience, Issuer: p.cfg.Issuer,
	}, nil
}

// emptyRequest is a request with an empty session: fosite's HMAC
// validation then checks the token's signature only (expiry is ours).
func emptyRequest() fosite.Requester {
	req := fosite.NewRequest()
	req.Session = newSession()
	return req
}
