package oauth

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Register mounts the protocol endpoints on the public router.
func (p *Provider) Register(r *mux.Router) {
	r.HandleFunc(PathToken, p.token) // every method: non-POST gets an OAuth error, not a bare 405
	r.HandleFunc(PathJWKS, p.jwks).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathOAuthDiscovery, p.serveDoc(p.discovery.oauth)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathOIDCDiscovery, p.serveDoc(p.discovery.oidc)).Methods(http.MethodGet, http.MethodHead)
}
