package oauth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/storage"
)

// userinfo serves GET and POST /userinfo (OIDC Core §5.3). The access token
// comes as a bearer token in the Authorization header, or (POST) in the
// access_token form parameter, never both (RFC 6750 §2). It must be active
// (signature, expiry, denylist, grant session) and carry the openid scope.
// Claims are released by scope: profile → name, preferred_username;
// email → email, email_verified.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	token, err := bearerToken(r)
	if err != nil {
		p.bearerError(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if token == "" {
		// RFC 6750 §3.1: no credentials, no error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="oauthd"`)
		httpx.NoStore(w)
		httpx.WriteJSON(w, http.StatusUnauthorized, &oauthError{Code: "invalid_token", Description: "An access token is required."})
		return
	}
	ctx := r.Context()
	claims, err := p.parseAccessToken(ctx, token)
	if err == nil {
		var active bool
		active, err = p.accessTokenActive(ctx, claims)
		if err == nil && !active {
			err = errTokenInvalid
		}
	}
	switch {
	case errors.Is(err, errUnavailable):
		p.writeError(w, r, err)
		return
	case err != nil:
		p.bearerError(w, r, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	scopes := strings.Fields(claims.Scope)
	has := func(s string) bool {
		for _, x := range scopes {
			if x == s {
				return true
			}
		}
		return false
	}
	if !has(ScopeOpenID) || claims.SessionID == "" {
		p.bearerError(w, r, http.StatusForbidden, "insufficient_scope", "The access token lacks the openid scope.")
		return
	}
	u, err := p.store.GetUser(ctx, claims.Subject)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		p.bearerError(w, r, http.StatusUnauthorized, "invalid_token", "The user of this token no longer exists.")
		return
	case err != nil:
		p.writeError(w, r, errors.Join(errUnavailable, err))
		return
	}
	out := map[string]any{"sub": u.ID}
	if has(ScopeProfile) {
		out["preferred_username"] = u.Username
		if u.Name != "" {
			out["name"] = u.Name
		}
	}
	if has(ScopeEmail) && u.Email != "" {
		out["email"] = u.Email
		out["email_verified"] = u.EmailVerified
	}
	httpx.NoStore(w)
	httpx.WriteJSON(w, http.StatusOK, out)
}

// bearerToken reads the access token from the Authorization header or the
// POST body; both at once is invalid_request (RFC 6750 §2).
func bearerToken(r *http.Request) (string, error) {
	var fromHeader string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", errors.New("The Authorization header must be 'Bearer <token>'.")
		}
		fromHeader = strings.TrimSpace(tok)
	}
	if r.Method != http.MethodPost {
		return fromHeader, nil
	}
	if err := parsePostForm(r); err != nil {
		if fromHeader != "" && r.ContentLength == 0 {
			return fromHeader, nil
		}
		return "", errors.New("The request body must be application/x-www-form-urlencoded.")
	}
	fromBody := r.PostForm.Get("access_token")
	if fromBody != "" && fromHeader != "" {
		return "", errors.New("Send the access token in one place only.")
	}
	if fromBody != "" {
		return fromBody, nil
	}
	return fromHeader, nil
}

// bearerError answers an RFC 6750 §3 error with WWW-Authenticate.
func (p *Provider) bearerError(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="oauthd", error="`+code+`", error_description="`+sanitizeDescription(desc)+`"`)
	httpx.NoStore(w)
	httpx.WriteJSON(w, status, &oauthError{Code: code, Description: desc})
}
