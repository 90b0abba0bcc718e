package oauth

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/storage"
)

// token serves POST /oauth2/token (RFC 6749 §3.2).
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.writeError(w, r, &oauthError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "The token endpoint accepts only POST."})
		return
	}
	if err := parsePostForm(r); err != nil {
		p.writeError(w, r, err)
		return
	}
	if err := checkSingleAuthMethod(r); err != nil {
		p.writeError(w, r, err)
		return
	}
	grant := r.PostForm.Get("grant_type")
	switch grant {
	case "":
		p.writeError(w, r, invalidRequest("The request parameter 'grant_type' is missing."))
		return
	case GrantClientCredentials, GrantAuthorizationCode, GrantRefreshToken:
	default:
		p.writeError(w, r, &oauthError{Status: http.StatusBadRequest, Code: "unsupported_grant_type",
			Description: "The grant type '" + sanitizeDescription(grant) + "' is not supported."})
		return
	}

	if _, _, basic := r.BasicAuth(); !basic && r.PostForm.Get("client_id") == "" {
		// RFC 6749 §5.2: "no client authentication included" is
		// invalid_client (fosite answers invalid_request).
		p.writeError(w, r, &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "Client authentication is required."})
		return
	}

	if grant == GrantAuthorizationCode {
		ctx = withCodeMemo(ctx)
	}
	session := newSession()
	ar, err := p.fosite.NewAccessRequest(ctx, r, session)
	if err != nil {
		if grant == GrantAuthorizationCode {
			if serr := p.fstore.spendFailedCode(ctx); serr != nil {
				err = serr
			}
		}
		p.writeError(w, r, err)
		return
	}
	if grant == GrantClientCredentials {
		if err := p.grantClientCredentials(ar, session, r.PostForm); err != nil {
			p.writeError(w, r, err)
			return
		}
	}
	resp, err := p.fosite.NewAccessResponse(ctx, ar)
	if err != nil {
		var cu *codeUsedError
		if errors.As(err, &cu) {
			// Lost the race for a code: its first use committed, and a
			// second use revokes what the first issued.
			if rerr := p.fstore.revokeGrant(ctx, cu.sessionID, storage.ReasonCodeReuse); rerr != nil {
				err = rerr
			}
		}
		p.writeError(w, r, err)
		return
	}
	resp.SetTokenType("Bearer") // RFC 6750 spelling; fosite writes "bearer"
	p.issued.WithLabelValues(grant).Inc()
	writeTokenResponse(w, resp.ToMap())
}

// tokenResponse is the RFC 6749 §5.1 answer. Encoding a struct instead of
// fosite's map halves the cost of this step on the hottest endpoint.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// writeTokenResponse writes fields (fosite's AccessResponder.ToMap) with
// Cache-Control: no-store. Any member the struct does not know is kept by
// encoding the map itself.
func writeTokenResponse(w http.ResponseWriter, fields map[string]interface{}) {
	var body interface{} = fields
	var tr tokenResponse
	known := true
	for k, v := range fields {
		switch k {
		case "access_token":
			tr.AccessToken, known = stringField(v, known)
		case "token_type":
			tr.TokenType, known = stringField(v, known)
		case "scope":
			tr.Scope, known = stringField(v, known)
		case "refresh_token":
			tr.RefreshToken, known = stringField(v, known)
		case "id_token":
			tr.IDToken, known = stringField(v, known)
		case "expires_in":
			n, ok := v.(int64)
			tr.ExpiresIn, known = n, known && ok
		default:
			known = false
		}
	}
	if known {
		body = tr
	}
	httpx.NoStore(w)
	httpx.WriteJSON(w, http.StatusOK, body)
}

func stringField(v interface{}, known bool) (string, bool) {
	s, ok := v.(string)
	return s, known && ok
}

// grantClientCredentials applies our policy to a client_credentials request
// fosite has authenticated and checked against the client's scopes and
// audiences:
//   - scope: the requested scopes; when none are requested, the client's
//     registered scopes (RFC 6749 §3.3 "pre-defined default value");
//   - aud: the requested audience / RFC 8707 resource values, each of which
//     must be registered for the client; else the client's registered
//     audiences; else the issuer, so aud is never empty (RFC 9068 §3);
//   - sub and client_id: the client (RFC 9068 §2.2).
func (p *Provider) grantClientCredentials(ar fosite.AccessRequester, s *Session, form url.Values) error {
	client := ar.GetClient()
	scopes := ar.GetRequestedScopes()
	if len(scopes) == 0 {
		scopes = client.GetScopes()
	}
	for _, sc := range scopes {
		ar.GrantScope(sc)
	}

	audience := append([]string(nil), ar.GetRequestedAudience()...)
	for _, res := range form["resource"] {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			return &oauthError{Status: http.StatusBadRequest, Code: "invalid_target", Description: "The resource parameter must be an absolute URI without a fragment."}
		}
		if !client.GetAudience().Has(res) {
			return &oauthError{Status: http.StatusBadRequest, Code: "invalid_target", Description: "The client may not request resource '" + sanitizeDescription(res) + "'."}
		}
		audience = append(audience, res)
	}
	if len(audience) == 0 {
		audience = client.GetAudience()
	}
	if len(audience) == 0 {
		audience = []string{p.cfg.Issuer}
	}
	seen := make(map[string]bool, len(audience))
	for _, a := range audience {
		if !seen[a] {
			seen[a] = true
			ar.GrantAudience(a)
		}
	}

	s.Subject = client.GetID()
	s.ClientID = client.GetID()
	return nil
}
