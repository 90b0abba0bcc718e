package oauth

import (
	"net/http"
)

// par serves POST /oauth2/par (RFC 9126) through fosite's PAR handler: the
// client authenticates, the request is validated as /oauth2/authorize
// would, plus our rules, and stored without credentials
// (CreatePARSession) for a short, single use (GetPARSession takes it and
// checks its expiry, which fosite does not).
func (p *Provider) par(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		// fosite reads r.Form, query included: parameters there would
		// escape the duplicate check, and a client_secret in a URL is
		// forbidden (RFC 6749 §2.3.1).
		p.writeError(w, r, invalidRequest("Send the pushed request in the body, with no query string."))
		return
	}
	if !p.clientPost(w, r) {
		return
	}
	ctx := r.Context()
	ar, err := p.fosite.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	if err := p.checkAuthorizeRequest(ar, true); err != nil {
		p.writeError(w, r, err)
		return
	}
	resp, err := p.fosite.NewPushedAuthorizeResponse(ctx, ar, newSession())
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	p.fosite.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}
