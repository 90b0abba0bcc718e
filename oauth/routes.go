package oauth

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Register mounts the protocol endpoints on the public router. The
// client-authenticated POST endpoints take every method and answer a wrong
// one with an OAuth error, not a bare 405.
func (p *Provider) Register(r *mux.Router) {
	r.HandleFunc(PathToken, p.token)
	r.HandleFunc(PathRevoke, p.revoke)
	r.HandleFunc(PathIntrospect, p.introspect)
	r.HandleFunc(PathPAR, p.par)
	r.HandleFunc(PathAuthorize, p.authorize).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(PathConsent, p.consent).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(PathLogout, p.logout).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(PathUserinfo, p.userinfo).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(PathJWKS, p.jwks).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathOAuthDiscovery, p.serveDoc(p.discovery.oauth)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathOIDCDiscovery, p.serveDoc(p.discovery.oidc)).Methods(http.MethodGet, http.MethodHead)
}
