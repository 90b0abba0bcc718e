package oauth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/oauthd/oauthd/storage"
)

// refreshStrategy is fosite's HMAC strategy for opaque refresh tokens.
type refreshStrategy interface {
	GenerateRefreshToken(ctx context.Context, r fosite.Requester) (token, signature string, err error)
	RefreshTokenSignature(ctx context.Context, token string) string
	ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error
}

// purposeRefreshSuccessor labels the sealed successor refresh token.
const purposeRefreshSuccessor = "oauthd refresh successor v1"

// refreshHandler is the refresh_token grant (RFC 6749 §6), replacing
// fosite's: rotation and reuse detection happen in one storage transaction
// under the family's lock (storage.RotateRefreshToken, ADR 0005):
//   - an active token rotates: its child becomes the only valid token;
//   - the just-rotated token presented again within the reuse window (a
//     retry after a lost response, a second tab) gets the same child back,
//     decrypted from the parent row, and a fresh access token; nothing is
//     revoked;
//   - any other rotated token is theft (RFC 9700 §4.14): the grant session
//     and every token of it are revoked, and the answer is invalid_grant.
//
// Because the rotation has happened before any token is generated, a
// failure later in the request (signing) is repaired by the client's retry,
// which falls in the window.
type refreshHandler struct {
	p        *Provider
	strategy oauth2.AccessTokenStrategy
	store    store
}

var _ fosite.TokenEndpointHandler = (*refreshHandler)(nil)

func (h *refreshHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *refreshHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantRefreshToken)
}

var errRefreshInvalid = &oauthError{Status: http.StatusBadRequest, Code: "invalid_grant",
	Description: "The refresh token is invalid, expired or revoked."}

var errRefreshReused = &oauthError{Status: http.StatusBadRequest, Code: "invalid_grant",
	Description: "The refresh token was already used; its session has been revoked."}

func (h *refreshHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	client := r.GetClient()
	if !client.GetGrantTypes().Has(GrantRefreshToken) {
		return &oauthError{Status: http.StatusBadRequest, Code: "unauthorized_client",
			Description: "The client is not allowed to use the refresh_token grant."}
	}
	token := r.GetRequestForm().Get("refresh_token")
	if token == "" {
		return invalidRequest("The request parameter 'refresh_token' is missing.")
	}
	if len(token) > 512 || h.p.hmac.ValidateRefreshToken(ctx, r, token) != nil {
		return errRefreshInvalid
	}
	sig := h.p.hmac.RefreshTokenSignature(ctx, token)
	if len(r.GetRequestedScopes()) > 0 {
		// A scope the grant does not cover is refused before rotating: the
		// refused request must leave the client's token as it was, or its
		// next refresh (after the reuse window) would be taken for theft.
		// Only an active token of this client is checked here; any other
		// goes on to the rotation, so that reuse detection still runs.
		row, err := h.store.GetRefreshToken(ctx, sig)
		switch {
		case err == nil && row.State == storage.TokenActive && row.ClientID == client.GetID():
			orig, err := decodeRequest(ctx, row.RequestData, h.p.fstore)
			if err != nil {
				return storageErr(err)
			}
			if _, err := refreshScopes(orig, client, r.GetRequestedScopes()); err != nil {
				return err
			}
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return storageErr(err)
		}
	}
	cfg := h.p.cfg
	now := time.Now().UTC()
	var child string
	res, err := h.store.RotateRefreshToken(ctx, storage.RotateRequest{
		ParentSignature: sig,
		ClientID:        client.GetID(),
		Now:             now,
		ReuseWindow:     cfg.RefreshReuseWindow,
		IdleTTL:         cfg.RefreshTokenTTL,
		NewChild: func() (storage.RefreshToken, []byte, error) {
			tok, childSig, err := h.p.hmac.GenerateRefreshToken(ctx, r)
			if err != nil {
				return storage.RefreshToken{}, nil, err
			}
			child = tok
			return storage.RefreshToken{Signature: childSig, ExpiresAt: now.Add(cfg.RefreshTokenTTL)},
				h.p.seal.Seal(purposeRefreshSuccessor, []byte(tok)), nil
		},
	})
	if err != nil {
		return storageErr(err)
	}
	switch res.Outcome {
	case storage.RotateRotated:
	case storage.RotateReplayed:
		plain, err := h.p.seal.Open(purposeRefreshSuccessor, res.Sealed)
		if err != nil {
			// Sealed under another secret: the retry cannot be honoured.
			return errRefreshInvalid
		}
		child = string(plain)
	case storage.RotateTheft:
		h.p.logger.WarnContext(ctx, "refresh token reuse: grant session revoked", "sid", res.SessionID, "client_id", client.GetID())
		return errRefreshReused
	default:
		return errRefreshInvalid
	}

	orig, err := decodeRequest(ctx, res.Parent.RequestData, h.p.fstore)
	if err != nil {
		return storageErr(err)
	}
	sess := orig.GetSession().(*Session)
	granted, err := refreshScopes(orig, client, r.GetRequestedScopes())
	if err != nil {
		// After a rotation this is reached only when the client has lost a
		// scope of the grant since it was given (asked scopes were checked
		// above): such a grant cannot be refreshed any more anyway.
		return err
	}
	for _, sc := range granted {
		r.GrantScope(sc)
	}
	for _, a := range orig.GetGrantedAudience() {
		// The audience must still be allowed too (the issuer is the
		// default audience of a client without registered ones).
		if a != h.p.cfg.Issuer && !client.GetAudience().Has(a) {
			return &oauthError{Status: http.StatusBadRequest, Code: "invalid_grant",
				Description: "The client is no longer allowed audience '" + sanitizeDescription(a) + "'."}
		}
		r.GrantAudience(a)
	}
	r.SetID(res.SessionID)
	sess.SetExpiresAt(fosite.AccessToken, now.Add(cfg.AccessTokenTTL).Round(time.Second))
	sess.refreshToken = child
	r.SetSession(sess)
	return nil
}

// refreshScopes returns the scopes a refresh of the grant orig gets: the
// grant's scopes, each of which must still be allowed for the client (it
// may have lost some since), or the narrower set asked for (RFC 6749 §6).
func refreshScopes(orig fosite.Requester, client fosite.Client, asked fosite.Arguments) (fosite.Arguments, error) {
	granted := orig.GetGrantedScopes()
	for _, sc := range granted {
		if !client.GetScopes().Has(sc) {
			return nil, &oauthError{Status: http.StatusBadRequest, Code: "invalid_scope",
				Description: "The client is no longer allowed scope '" + sanitizeDescription(sc) + "'."}
		}
	}
	if len(asked) == 0 {
		return granted, nil
	}
	for _, sc := range asked {
		if !granted.Has(sc) {
			return nil, &oauthError{Status: http.StatusBadRequest, Code: "invalid_scope",
				Description: "Scope '" + sanitizeDescription(sc) + "' was not granted."}
		}
	}
	return asked, nil
}

func (h *refreshHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := r.GetSession().(*Session)
	if !ok || sess.refreshToken == "" {
		return fosite.ErrServerError.WithDebug("refresh handler: no rotated token in the session")
	}
	access, _, err := h.strategy.GenerateAccessToken(ctx, r)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	resp.SetAccessToken(access)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(time.Until(sess.GetExpiresAt(fosite.AccessToken)).Round(time.Second))
	resp.SetScopes(r.GetGrantedScopes())
	resp.SetExtra("refresh_token", sess.refreshToken)
	return nil
}
