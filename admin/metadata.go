package admin

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/oauthd/oauthd/storage"
)

// Metadata is a client as the admin API speaks it (RFC 7591 §2, RFC 9126 §6's
// require_pushed_authorization_requests, plus oauthd's skip_consent and
// allow_introspection flags).
type Metadata struct {
	ClientID                string   `json:"client_id,omitempty"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Audience                []string `json:"audience"`
	PostLogoutRedirectURIs  []string `json:"post_logout_redirect_uris"`
	SkipConsent             bool     `json:"skip_consent"`
	AllowIntrospection      bool     `json:"allow_introspection"`
	// RequirePAR: the client must push its authorization requests to
	// /oauth2/par; a plain /oauth2/authorize request is refused (RFC 9126 §6).
	RequirePAR bool `json:"require_pushed_authorization_requests"`
	// Output only.
	ClientIDIssuedAt      int64  `json:"client_id_issued_at,omitempty"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
}

// Error is an RFC 7591 §3.2.2 registration error.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func invalidMetadata(format string, args ...any) *Error {
	return &Error{Code: "invalid_client_metadata", Description: fmt.Sprintf(format, args...)}
}

func invalidRedirect(format string, args ...any) *Error {
	return &Error{Code: "invalid_redirect_uri", Description: fmt.Sprintf(format, args...)}
}

// Limits that keep one registration from bloating every cached client.
const (
	maxURIs       = 50
	maxURILength  = 2000
	maxNameLength = 200
	maxScopes     = 200
	maxAudiences  = 50
)

var (
	clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$`)
	// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
	scopeTokenPattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
)

// Auth methods and grant types a client may be registered with.
var (
	authMethods = []string{"client_secret_basic", "client_secret_post", "none"}
)

// normalize validates m against the grant types the server supports, fills
// defaults, and returns the record to store (without id or secret).
func normalize(m Metadata, supportedGrants []string) (storage.Client, error) {
	var c storage.Client
	// client_name is optional (RFC 7591 §2); pages show the client_id instead.
	if utf8.RuneCountInString(m.ClientName) > maxNameLength || strings.IndexFunc(m.ClientName, unicode.IsControl) >= 0 || !utf8.ValidString(m.ClientName) {
		return c, invalidMetadata("client_name must be at most %d printable characters", maxNameLength)
	}
	c.Name = m.ClientName

	c.TokenEndpointAuthMethod = m.TokenEndpointAuthMethod
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if !slices.Contains(authMethods, c.TokenEndpointAuthMethod) {
		return c, invalidMetadata("token_endpoint_auth_method %q is not supported (want one of %s)", m.TokenEndpointAuthMethod, strings.Join(authMethods, ", "))
	}

	c.GrantTypes = dedupe(m.GrantTypes)
	if len(c.GrantTypes) == 0 {
		// RFC 7591 §2 defaults to authorization_code; a server without it
		// registers for the one grant it has.
		c.GrantTypes = []string{defaultGrant(supportedGrants)}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(supportedGrants, g) {
			return c, invalidMetadata("grant type %q is not supported (want one of %s)", g, strings.Join(supportedGrants, ", "))
		}
	}
	if slices.Contains(c.GrantTypes, "client_credentials") && c.TokenEndpointAuthMethod == "none" {
		return c, invalidMetadata("a public client (token_endpoint_auth_method none) cannot use the client_credentials grant")
	}
	if slices.Contains(c.GrantTypes, "refresh_token") && !slices.Contains(c.GrantTypes, "authorization_code") {
		return c, invalidMetadata("the refresh_token grant needs the authorization_code grant")
	}

	usesCode := slices.Contains(c.GrantTypes, "authorization_code")
	c.ResponseTypes = dedupe(m.ResponseTypes)
	if len(c.ResponseTypes) == 0 && usesCode {
		c.ResponseTypes = []string{"code"}
	}
	for _, rt := range c.ResponseTypes {
		if rt != "code" || !usesCode {
			return c, invalidMetadata("response type %q is not supported with grant types %s (only \"code\", with authorization_code)", rt, strings.Join(c.GrantTypes, ", "))
		}
	}
	if c.ResponseTypes == nil {
		c.ResponseTypes = []string{}
	}

	var err error
	if c.RedirectURIs, err = checkRedirectURIs("redirect_uris", m.RedirectURIs); err != nil {
		return c, err
	}
	if usesCode && len(c.RedirectURIs) == 0 {
		return c, invalidRedirect("redirect_uris is required for the authorization_code grant")
	}
	if c.PostLogoutRedirectURIs, err = checkRedirectURIs("post_logout_redirect_uris", m.PostLogoutRedirectURIs); err != nil {
		return c, err
	}

	scopes := strings.Fields(m.Scope)
	if len(scopes) > maxScopes {
		return c, invalidMetadata("at most %d scopes", maxScopes)
	}
	if strings.Join(scopes, " ") != m.Scope && m.Scope != "" {
		return c, invalidMetadata("scope must be scope tokens separated by single spaces")
	}
	for _, s := range scopes {
		if !scopeTokenPattern.MatchString(s) {
			return c, invalidMetadata("scope %q contains characters RFC 6749 §3.3 does not allow", s)
		}
	}
	c.Scope = strings.Join(dedupe(scopes), " ")

	if len(m.Audience) > maxAudiences {
		return c, invalidMetadata("at most %d audiences", maxAudiences)
	}
	c.Audience = dedupe(m.Audience)
	for _, a := range c.Audience {
		if a == "" || len(a) > maxURILength || strings.IndexFunc(a, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return c, invalidMetadata("audience %q must be a non-empty string without spaces", a)
		}
	}
	c.SkipConsent = m.SkipConsent
	c.AllowIntrospection = m.AllowIntrospection
	c.RequirePAR = m.RequirePAR
	return c, nil
}

func defaultGrant(supported []string) string {
	if slices.Contains(supported, "authorization_code") {
		return "authorization_code"
	}
	return "client_credentials"
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkRedirectURIs refuses what RFC 6749 §3.1.2, RFC 9700 §2.1/§4.1 and
// RFC 8252 rule out: relative URIs, fragments, user info, wildcards, plain
// http except on loopback, script-capable and local schemes, dot segments.
// Private-use schemes of native apps must look like reversed domain names
// (RFC 8252 §7.1).
func checkRedirectURIs(field string, uris []string) ([]string, error) {
	if len(uris) > maxURIs {
		return nil, invalidRedirect("%s: at most %d URIs", field, maxURIs)
	}
	out := dedupe(uris)
	for _, raw := range out {
		if err := checkRedirectURI(raw); err != nil {
			return nil, invalidRedirect("%s: %q %s", field, truncate(raw, 100), err)
		}
	}
	return out, nil
}

var forbiddenSchemes = []string{"javascript", "data", "vbscript", "file", "about", "blob", "filesystem"}

func checkRedirectURI(raw string) error {
	if raw == "" || len(raw) > maxURILength {
		return fmt.Errorf("must be between 1 and %d characters", maxURILength)
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r > 0x7e }) >= 0 {
		return fmt.Errorf("must not contain spaces, control or non-ASCII characters")
	}
	if strings.Contains(raw, "*") {
		return fmt.Errorf("must not contain wildcards")
	}
	if strings.Contains(raw, "#") {
		return fmt.Errorf("must not contain a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("must be an absolute URI")
	}
	scheme := strings.ToLower(u.Scheme)
	if slices.Contains(forbiddenSchemes, scheme) {
		return fmt.Errorf("uses the forbidden scheme %q", scheme)
	}
	if u.User != nil {
		return fmt.Errorf("must not contain user info")
	}
	if raw[:len(scheme)] != scheme { // url.Parse lower-cases the scheme; exact matching must not
		return fmt.Errorf("scheme must be lower case")
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		// Decode first (".%2e", "%2E."), and drop ";params" ("..;"), as a
		// server behind the client might before resolving the path.
		if dec, err := url.PathUnescape(seg); err == nil {
			seg = dec
		}
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		if seg == "." || seg == ".." {
			return fmt.Errorf("must not contain dot segments")
		}
	}
	switch scheme {
	case "https":
		if u.Hostname() == "" {
			return fmt.Errorf("must name a host")
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("may use http only on a loopback host (127.0.0.1, [::1] or localhost)")
		}
	default:
		// RFC 8252 §7.1: private-use schemes based on a domain name the
		// app's author controls, e.g. com.example.app:/callback.
		if !strings.Contains(scheme, ".") {
			return fmt.Errorf("must use https, http on loopback, or a reverse-domain private-use scheme (RFC 8252 §7.1)")
		}
	}
	return nil
}

// isLoopback accepts exactly the three loopback spellings RFC 8252 §7.3 and
// §8.3 name (not 127.0.0.2, ::ffff:127.0.0.1 or other forms): redirect URIs
// are compared as strings, so one spelling is one client.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// toMetadata renders a stored client (never its secret or hash).
func toMetadata(c *storage.Client) Metadata {
	return Metadata{
		ClientID:                c.ID,
		ClientName:              c.Name,
		RedirectURIs:            nonNil(c.RedirectURIs),
		GrantTypes:              nonNil(c.GrantTypes),
		ResponseTypes:           nonNil(c.ResponseTypes),
		Scope:                   c.Scope,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		Audience:                nonNil(c.Audience),
		PostLogoutRedirectURIs:  nonNil(c.PostLogoutRedirectURIs),
		SkipConsent:             c.SkipConsent,
		AllowIntrospection:      c.AllowIntrospection,
		RequirePAR:              c.RequirePAR,
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
