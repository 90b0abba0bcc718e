package oauth

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/storage"
)

// revoke serves POST /oauth2/revoke (RFC 7009). The client authenticates
// and may revoke only its own tokens:
//   - a refresh token revokes its whole grant session: every refresh token
//     of it fails at once and its access tokens introspect inactive;
//   - an access token (JWT) is denied by jti until it expires.
//
// Unknown, malformed, expired and other clients' tokens answer 200 with
// nothing done (§2.2: the client cannot act on the difference, and an
// attacker learns nothing). A database failure answers 503, not 200 as
// fosite's handler would.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	c, ok := p.postEndpoint(w, r)
	if !ok {
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		p.writeError(w, r, invalidRequest("The request parameter 'token' is missing."))
		return
	}
	if err := p.revokeToken(r, c, token); err != nil {
		p.writeError(w, r, err)
		return
	}
	httpx.NoStore(w)
	w.WriteHeader(http.StatusOK)
}

func (p *Provider) revokeToken(r *http.Request, c *client, token string) error {
	ctx := r.Context()
	now := time.Now()
	if strings.Count(token, ".") == 2 {
		claims, err := p.parseAccessToken(ctx, token)
		switch {
		case errors.Is(err, errUnavailable):
			return err
		case err != nil:
			return nil // invalid, or expired: nothing left to revoke
		case claims.ClientID != c.GetID():
			return nil
		}
		if err := p.store.DenyAccessToken(ctx, claims.JTI, time.Unix(claims.ExpiresAt, 0), now); err != nil {
			return errors.Join(errUnavailable, err)
		}
		return nil
	}
	if len(token) > 512 || p.hmac.ValidateRefreshToken(ctx, emptyRequest(), token) != nil {
		return nil
	}
	row, err := p.store.GetRefreshToken(ctx, p.hmac.RefreshTokenSignature(ctx, token))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return errors.Join(errUnavailable, err)
	case row.ClientID != c.GetID():
		return nil
	}
	err = p.store.RevokeGrantSession(ctx, row.SessionID, storage.ReasonClient, now)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return errors.Join(errUnavailable, err)
	}
	return nil
}
