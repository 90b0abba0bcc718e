package oauth

import (
	"errors"
	"net/http"

	"github.com/ory/fosite"
)

var errClientAuthRequired = &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "Client authentication is required."}

// clientPost checks the shape of a client's POST before fosite sees it:
// POST only, a form body without repeated parameters, one authentication
// method, and some client authentication at all. It answers the error
// itself and reports whether to go on.
func (p *Provider) clientPost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.writeError(w, r, &oauthError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "This endpoint accepts only POST."})
		return false
	}
	if err := parsePostForm(r); err != nil {
		p.writeError(w, r, err)
		return false
	}
	if err := checkSingleAuthMethod(r); err != nil {
		p.writeError(w, r, err)
		return false
	}
	if _, _, basic := r.BasicAuth(); !basic && r.PostForm.Get("client_id") == "" {
		p.writeError(w, r, errClientAuthRequired)
		return false
	}
	return true
}

// postEndpoint does what every client-authenticated POST endpoint of ours
// starts with: POST only, a form body without repeated parameters, one
// authentication method, and the client authenticated by fosite (basic,
// post, or none for public clients).
func (p *Provider) postEndpoint(w http.ResponseWriter, r *http.Request) (*client, bool) {
	if !p.clientPost(w, r) {
		return nil, false
	}
	fc, err := p.fosite.AuthenticateClient(r.Context(), r, r.PostForm)
	if err != nil {
		if !errors.Is(err, errUnavailable) {
			err = fosite.ErrInvalidClient.WithWrap(err)
		}
		p.writeError(w, r, err)
		return nil, false
	}
	c, ok := fc.(*client)
	if !ok {
		p.writeError(w, r, errors.New("oauth: unexpected client type"))
		return nil, false
	}
	return c, true
}
