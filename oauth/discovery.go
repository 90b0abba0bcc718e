package oauth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metadata is the authorization server metadata (RFC 8414 §2) and the
// OpenID Provider metadata (OpenID Connect Discovery 1.0 §3). Only what is
// implemented is advertised: an endpoint appears here when it exists.
type metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	// OpenID Connect Discovery fields.
	UserinfoEndpoint      string   `json:"userinfo_endpoint,omitempty"`
	EndSessionEndpoint    string   `json:"end_session_endpoint,omitempty"`
	ClaimsSupported       []string `json:"claims_supported,omitempty"`
	PromptValuesSupported []string `json:"prompt_values_supported,omitempty"`
	// OpenID Connect Discovery fields.
	SubjectTypesSupported            []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	// RFC 9068 §4 does not define a metadata field for the access-token
	// algorithm; this one is informative.
	AccessTokenSigningAlgValuesSupported []string `json:"access_token_signing_alg_values_supported,omitempty"`
}

// discoveryDocs holds both documents prepared once: they change only with
// the configuration.
type discoveryDocs struct {
	oauth, oidc []byte
}

// endpoint is the URL of path under the issuer. The issuer is used exactly
// as configured in iss and discovery, trailing slash included; URLs under it
// never get a double slash.
func endpoint(issuer, path string) string { return strings.TrimSuffix(issuer, "/") + path }

// TokenEndpoint is the token endpoint URL for issuer.
func TokenEndpoint(issuer string) string { return endpoint(issuer, PathToken) }

func buildDiscovery(cfg Config) (discoveryDocs, error) {
	m := metadata{
		Issuer:                                     cfg.Issuer,
		AuthorizationEndpoint:                      endpoint(cfg.Issuer, PathAuthorize),
		TokenEndpoint:                              endpoint(cfg.Issuer, PathToken),
		JWKSURI:                                    endpoint(cfg.Issuer, PathJWKS),
		RevocationEndpoint:                         endpoint(cfg.Issuer, PathRevoke),
		IntrospectionEndpoint:                      endpoint(cfg.Issuer, PathIntrospect),
		PushedAuthorizationRequestEndpoint:         endpoint(cfg.Issuer, PathPAR),
		ScopesSupported:                            []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess},
		GrantTypesSupported:                        SupportedGrantTypes,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		CodeChallengeMethodsSupported:              []string{"S256"},
		TokenEndpointAuthMethodsSupported:          []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone},
		RevocationEndpointAuthMethodsSupported:     []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone},
		IntrospectionEndpointAuthMethodsSupported:  []string{AuthMethodBasic, AuthMethodPost},
		AuthorizationResponseIssParameterSupported: true,
		AccessTokenSigningAlgValuesSupported:       []string{cfg.AccessTokenAlg},
	}
	oauthDoc, err := json.Marshal(m)
	if err != nil {
		return discoveryDocs{}, err
	}
	m.UserinfoEndpoint = endpoint(cfg.Issuer, PathUserinfo)
	m.EndSessionEndpoint = endpoint(cfg.Issuer, PathLogout)
	m.ClaimsSupported = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "name", "preferred_username", "email", "email_verified"}
	m.PromptValuesSupported = []string{"none", "login", "consent"}
	m.SubjectTypesSupported = []string{"public"}
	m.IDTokenSigningAlgValuesSupported = []string{cfg.IDTokenAlg}
	oidcDoc, err := json.Marshal(m)
	if err != nil {
		return discoveryDocs{}, err
	}
	return discoveryDocs{oauth: oauthDoc, oidc: oidcDoc}, nil
}

func (p *Provider) serveDoc(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write(doc)
	}
}

// jwks serves the JWKS from prepared bytes (they change only when the key
// set does), with an ETag; If-None-Match with the current ETag answers 304.
func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	body, etag := p.keys.JWKS()
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(p.cfg.JWKSMaxAge/time.Second)))
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// etagMatch implements the weak comparison of If-None-Match (RFC 9110
// §13.1.2): a list of entity tags, or "*".
func etagMatch(header, etag string) bool {
	for len(header) > 0 {
		for len(header) > 0 && (header[0] == ' ' || header[0] == ',' || header[0] == '\t') {
			header = header[1:]
		}
		if len(header) == 0 {
			return false
		}
		if header[0] == '*' {
			return true
		}
		end := len(header)
		for i := 0; i < len(header); i++ {
			if header[i] == ',' {
				end = i
				break
			}
		}
		tag := header[:end]
		header = header[end:]
		for len(tag) > 0 && (tag[len(tag)-1] == ' ' || tag[len(tag)-1] == '\t') {
			tag = tag[:len(tag)-1]
		}
		if len(tag) > 2 && tag[:2] == "W/" {
			tag = tag[2:]
		}
		if tag == etag {
			return true
		}
	}
	return false
}
