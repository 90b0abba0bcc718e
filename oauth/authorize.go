package oauth

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/storage"
)

// The authorization endpoint (RFC 6749 §4.1, OIDC Core §3.1.2) and the
// consent step.
//
// A request is validated by fosite first (client, exact redirect URI,
// response type, scopes, audience, state) and by our stricter rules (PKCE
// S256 shape, nonce length, prompt, max_age, per-client PAR). While the
// person signs in or consents, the validated parameters travel through the
// browser sealed (AES-GCM, pendingAuthorization): no server-side row, and
// nothing the browser can read or alter. Resuming parses them again with
// fosite, so a client changed in between is checked as it is now; a pushed
// request (single-use) is resumed from its sealed parameters, never from its
// request_uri.

// pendingAuthorization is the sealed state of an authorization request
// waiting for sign-in or consent.
type pendingAuthorization struct {
	Form url.Values `json:"f"`
	// RequestedAt is when the request first arrived (unix nanoseconds):
	// prompt=login and max_age are measured against it. Whole seconds
	// would not do: a sign-in earlier in the same second as a
	// prompt=login request would count as the new one.
	RequestedAt int64 `json:"tn"`
	// Pushed: the parameters came from a pushed request (RFC 9126).
	Pushed bool `json:"p,omitempty"`
	// Expires bounds how long the person may take (unix seconds).
	Expires int64 `json:"e"`
}

const (
	purposePending = "oauthd pending authorization v1"
	pendingTTL     = 30 * time.Minute
	// resumeParam carries the sealed pending authorization.
	resumeParam = "resume"
)

// authorize serves GET and POST /oauth2/authorize.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	redirectHeaders(w)
	if r.Method == http.MethodGet && len(r.URL.Query()) == 1 && r.URL.Query().Has(resumeParam) {
		pending, err := p.openPending(r.URL.Query().Get(resumeParam))
		if err != nil {
			p.browser.RenderError(w, r, http.StatusBadRequest, "This sign-in link has expired",
				"Go back to the application and start signing in again.")
			return
		}
		p.continueAuthorization(w, r, pending, false)
		return
	}
	if r.Method == http.MethodPost && !isURLEncodedForm(r) {
		// fosite would also read multipart bodies, past our duplicate check.
		p.browser.RenderError(w, r, http.StatusUnsupportedMediaType, "Invalid request",
			"The authorization request must be sent as application/x-www-form-urlencoded.")
		return
	}
	if err := r.ParseForm(); err != nil {
		if httpx.IsTooLarge(err) {
			p.browser.RenderError(w, r, http.StatusRequestEntityTooLarge, "Invalid request", "The authorization request is too large.")
			return
		}
		p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid request", "The authorization request could not be read.")
		return
	}
	if dup := duplicateParam(r.URL.Query(), r.PostForm); dup != "" {
		// Which redirect_uri or client_id would be the real one? Neither is
		// trusted: the error is shown here, never redirected (RFC 6749
		// §4.1.2.1).
		p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid request",
			"The parameter '"+sanitizeDescription(dup)+"' was sent more than once.")
		return
	}
	switch {
	case r.Form.Has(resumeParam):
		p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid request", "The parameter 'resume' is reserved.")
		return
	case r.Form.Has("request"):
		p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid request", "Request objects are not supported (request_not_supported).")
		return
	case len(r.URL.RawQuery)+len(r.PostForm.Encode()) > maxAuthorizeRequest:
		p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid request", "The authorization request is too large.")
		return
	}
	pushed := r.Form.Has("request_uri")
	req := r
	if pushed {
		if !strings.HasPrefix(r.Form.Get("request_uri"), p.parPrefix) {
			// Only our own pushed requests; fosite would hand any other
			// value to its request-object code (and not load a PAR).
			p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid request",
				"Only request_uri values from this server's pushed authorization request endpoint are supported.")
			return
		}
		// RFC 9126 §4: only the pushed parameters count. fosite would merge
		// whatever else the link carries (nonce, prompt, scope ...) into
		// the pushed request, so it sees client_id and request_uri alone.
		req = r.Clone(r.Context())
		req.Method = http.MethodGet
		req.URL = &url.URL{Path: PathAuthorize, RawQuery: url.Values{
			"client_id": {r.Form.Get("client_id")}, "request_uri": {r.Form.Get("request_uri")}}.Encode()}
		req.Body, req.Form, req.PostForm = http.NoBody, nil, nil
		req.Header = r.Header.Clone()
		req.Header.Del("Content-Type")
	}
	ar, err := p.fosite.NewAuthorizeRequest(r.Context(), req)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	form := cloneForm(ar.GetRequestForm())
	form.Del("request_uri")
	pending := &pendingAuthorization{Form: form, RequestedAt: time.Now().UnixNano(), Pushed: pushed}
	if err := p.checkAuthorizeRequest(ar, pushed); err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	p.decide(w, r, ar, pending, false)
}

// maxAuthorizeRequest bounds the parameters of one authorization request,
// so that what is sealed through the browser stays well under the limit
// openPending accepts.
const maxAuthorizeRequest = 8 << 10

// maxMaxAge is ten years: any larger max_age means "no limit" in practice
// and would overflow a time.Duration.
const maxMaxAge = 315360000

// redirectHeaders protect the redirects and pages of the browser-facing
// endpoints: never framed, never cached (they carry codes and the sealed
// pending request). Pages rendered by the Browser set their own full set.
func redirectHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

func isURLEncodedForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// continueAuthorization re-parses a pending request and goes on with it.
func (p *Provider) continueAuthorization(w http.ResponseWriter, r *http.Request, pending *pendingAuthorization, consented bool) {
	if ar, ok := p.reparse(w, r, pending); ok {
		p.decide(w, r, ar, pending, consented)
	}
}

// reparse validates a pending request again, as it would be validated now
// (the client may have changed), answering any error itself.
func (p *Provider) reparse(w http.ResponseWriter, r *http.Request, pending *pendingAuthorization) (fosite.AuthorizeRequester, bool) {
	ar, err := p.parsePending(r, pending)
	if err == nil {
		err = p.checkAuthorizeRequest(ar, pending.Pushed)
	}
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return nil, false
	}
	return ar, true
}

// parsePending runs fosite's validation again on the sealed parameters.
func (p *Provider) parsePending(r *http.Request, pending *pendingAuthorization) (fosite.AuthorizeRequester, error) {
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.URL = &url.URL{Path: PathAuthorize, RawQuery: pending.Form.Encode()}
	req.Body = http.NoBody
	req.Form, req.PostForm = nil, nil
	req.Header = r.Header.Clone()
	req.Header.Del("Content-Type")
	return p.fosite.NewAuthorizeRequest(r.Context(), req)
}

// decide signs the person in, asks for consent, or issues the code.
func (p *Provider) decide(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, pending *pendingAuthorization, consented bool) {
	ctx := r.Context()
	form := ar.GetRequestForm()
	prompts := strings.Fields(form.Get("prompt"))
	has := func(v string) bool {
		for _, x := range prompts {
			if x == v {
				return true
			}
		}
		return false
	}
	userID, authTime, signedIn, err := p.browser.SignedIn(r)
	if err != nil {
		p.logger.ErrorContext(ctx, "browser session lookup failed", "err", err)
		p.authorizeError(w, r, ar, errTemporarilyUnavailable)
		return
	}
	requestedAt := time.Unix(0, pending.RequestedAt)
	// prompt=login and max_age are measured against the request time, as
	// fosite's checks are: a sign-in after the request satisfies both
	// (max_age=0 included), and a slow consent step does not count.
	needLogin := !signedIn ||
		(has("login") && authTime.Before(requestedAt)) ||
		(form.Get("max_age") != "" && authTime.Add(time.Duration(maxAge(form))*time.Second).Before(requestedAt))
	if needLogin {
		if has("none") {
			p.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The person is not signed in."))
			return
		}
		http.Redirect(w, r, p.browser.LoginURL(p.resumeURL(pending), form.Get("login_hint")), http.StatusSeeOther)
		return
	}

	client := ar.GetClient().(*client)
	scopes := ar.GetRequestedScopes()
	if !consented && !client.rec.SkipConsent {
		need := has("consent")
		if !need {
			c, err := p.store.GetConsent(ctx, userID, client.GetID())
			switch {
			case errors.Is(err, storage.ErrNotFound):
				need = true
			case err != nil:
				p.logger.ErrorContext(ctx, "consent lookup failed", "err", err)
				p.authorizeError(w, r, ar, errTemporarilyUnavailable)
				return
			default:
				need = !c.Covers(scopes)
			}
		}
		if need {
			if has("none") {
				p.authorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The person has not allowed this application yet."))
				return
			}
			http.Redirect(w, r, PathConsent+"?"+resumeParam+"="+url.QueryEscape(p.sealPending(pending)), http.StatusSeeOther)
			return
		}
	}
	p.issueCode(w, r, ar, userID, authTime, requestedAt, has("none"))
}

// issueCode grants the requested scopes and audience, starts the session
// that the code exchange will create (its id is the sid and the fosite
// request id), and redirects with the code and iss (RFC 9207).
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, userID string, authTime, requestedAt time.Time, promptNone bool) {
	ctx := r.Context()
	c := ar.GetClient()
	for _, sc := range ar.GetRequestedScopes() {
		ar.GrantScope(sc)
	}
	// aud: the requested audience / RFC 8707 resource values (checked
	// against the client in checkAuthorizeRequest), else the client's
	// registered audiences, else the issuer: never empty (RFC 9068 §3).
	aud := append(fosite.Arguments(nil), ar.GetRequestedAudience()...)
	aud = append(aud, ar.GetRequestForm()["resource"]...)
	if len(aud) == 0 {
		aud = c.GetAudience()
	}
	if len(aud) == 0 {
		aud = fosite.Arguments{p.cfg.Issuer}
	}
	seen := map[string]bool{}
	for _, a := range aud {
		if !seen[a] {
			seen[a] = true
			ar.GrantAudience(a)
		}
	}
	sid := newGrantSessionID()
	ar.(*fosite.AuthorizeRequest).ID = sid

	sess := newSession()
	sess.Subject = userID
	sess.ClientID = c.GetID()
	sess.SessionID = sid
	sess.UserAgent = truncate(r.UserAgent(), 512)
	sess.IP = clientIP(r)
	if !promptNone {
		// prompt=none: the request time is now (the person did nothing);
		// otherwise it is when the request first arrived, which a sign-in
		// demanded by prompt=login or max_age came after.
		// Whole seconds, as auth_time: fosite's prompt=login check
		// compares the two.
		sess.Claims.RequestedAt = requestedAt.UTC().Truncate(time.Second)
	} else {
		sess.Claims.RequestedAt = time.Now().UTC()
	}
	sess.Claims.Subject = userID
	sess.Claims.AuthTime = authTime.UTC().Truncate(time.Second)
	if sess.Claims.AuthTime.After(sess.Claims.RequestedAt) && promptNone {
		sess.Claims.RequestedAt = sess.Claims.AuthTime
	}
	sess.Claims.Extra = map[string]interface{}{"sid": sid}

	resp, err := p.fosite.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	resp.AddParameter("iss", p.cfg.Issuer)
	p.fosite.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// consent serves GET /consent (the page) and POST /consent (the decision).
func (p *Provider) consent(w http.ResponseWriter, r *http.Request) {
	redirectHeaders(w)
	raw := r.URL.Query().Get(resumeParam)
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			if httpx.IsTooLarge(err) {
				p.browser.RenderError(w, r, http.StatusRequestEntityTooLarge, "Invalid request", "The form is too large.")
				return
			}
			p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid request", "The form could not be read.")
			return
		}
		raw = r.PostForm.Get(resumeParam)
	}
	pending, err := p.openPending(raw)
	if err != nil {
		p.browser.RenderError(w, r, http.StatusBadRequest, "This sign-in link has expired",
			"Go back to the application and start signing in again.")
		return
	}
	ar, ok := p.reparse(w, r, pending)
	if !ok {
		return
	}
	userID, _, signedIn, err := p.browser.SignedIn(r)
	if err != nil {
		p.authorizeError(w, r, ar, errTemporarilyUnavailable)
		return
	}
	if !signedIn {
		http.Redirect(w, r, p.browser.LoginURL(p.resumeURL(pending), ""), http.StatusSeeOther)
		return
	}
	c := ar.GetClient().(*client)
	if r.Method != http.MethodPost {
		name := c.rec.Name
		if name == "" {
			name = c.GetID()
		}
		p.browser.RenderConsent(w, r, name, ar.GetRequestedScopes(), PathConsent, url.Values{resumeParam: {raw}})
		return
	}
	if !p.browser.CheckCSRF(r) {
		p.browser.RenderError(w, r, http.StatusForbidden, "Request refused",
			"This form has expired or was not sent from this site. Go back and try again.")
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		if err := p.store.GrantConsent(r.Context(), userID, c.GetID(), ar.GetRequestedScopes(), time.Now()); err != nil {
			p.logger.ErrorContext(r.Context(), "store consent failed", "err", err)
			p.authorizeError(w, r, ar, errTemporarilyUnavailable)
			return
		}
		p.decide(w, r, ar, pending, true)
	case "deny":
		p.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The person denied the request."))
	default:
		p.browser.RenderError(w, r, http.StatusBadRequest, "Invalid request", "Choose Allow or Deny.")
	}
}

// checkAuthorizeRequest adds our rules to fosite's validation. Each failure
// is redirected to the (validated) redirect URI.
func (p *Provider) checkAuthorizeRequest(ar fosite.AuthorizeRequester, pushed bool) error {
	form := ar.GetRequestForm()
	if !ar.GetResponseTypes().ExactOne("code") {
		return fosite.ErrUnsupportedResponseType.WithHint("Only response_type=code is supported.")
	}
	if m := form.Get("response_mode"); m != "" && m != "query" {
		return fosite.ErrInvalidRequest.WithHint("Only response_mode=query is supported.")
	}
	if c, ok := ar.GetClient().(*client); ok && c.rec.RequirePAR && !pushed {
		return fosite.ErrInvalidRequest.WithHint("This client must push its authorization requests (RFC 9126).")
	}
	// PKCE (RFC 7636, RFC 9700 §2.1.1): S256 always; fosite would accept
	// a challenge of any length and treat a missing method as plain.
	switch {
	case form.Get("code_challenge") == "":
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge with code_challenge_method=S256.")
	case form.Get("code_challenge_method") != "S256":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	case !isS256Challenge(form.Get("code_challenge")):
		return fosite.ErrInvalidRequest.WithHint("code_challenge must be 43 base64url characters (the SHA-256 of the verifier).")
	}
	// A short nonce would make the ID token fail only at the token
	// endpoint, after the code is spent (fosite pitfall 7).
	if n := form.Get("nonce"); n != "" && (len(n) < 8 || len(n) > 512) {
		return fosite.ErrInvalidRequest.WithHint("nonce must be 8 to 512 characters.")
	}
	for _, res := range form["resource"] {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			return &oauthError{Status: http.StatusBadRequest, Code: "invalid_target", Description: "The resource parameter must be an absolute URI without a fragment."}
		}
		if !ar.GetClient().GetAudience().Has(res) {
			return &oauthError{Status: http.StatusBadRequest, Code: "invalid_target", Description: "The client may not request resource '" + sanitizeDescription(res) + "'."}
		}
	}
	if len(form.Get("state")) > 2048 {
		return fosite.ErrInvalidRequest.WithHint("state must be at most 2048 characters.")
	}
	prompts := strings.Fields(form.Get("prompt"))
	for _, pr := range prompts {
		switch pr {
		case "login", "consent":
		case "none":
			if len(prompts) > 1 {
				return fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values.")
			}
		default:
			return fosite.ErrInvalidRequest.WithHint("prompt must be login, consent or none.")
		}
	}
	if v := form.Get("max_age"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 || n > maxMaxAge {
			return fosite.ErrInvalidRequest.WithHint("max_age must be a whole number of seconds from 0 to 315360000.")
		}
	}
	return nil
}

// authorizeError answers an authorization error: redirected with error,
// error_description, state and iss to a redirect URI fosite has validated,
// else shown on our error page (RFC 6749 §4.1.2.1: never redirect to an
// unvalidated URI).
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	oe := toOAuthError(err)
	if oe.Code == "invalid_state" { // fosite's own code; not registered (RFC 6749 §4.1.2.1)
		oe = &oauthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: "state must be at least 8 characters."}
	}
	if oe.Status >= 500 {
		p.logger.ErrorContext(r.Context(), "authorization failed", "err", err)
	}
	if ar == nil || !ar.IsRedirectURIValid() {
		title := "This application's sign-in request is invalid"
		if oe.Status >= 500 {
			title = "Something went wrong"
		}
		p.browser.RenderError(w, r, statusForPage(oe.Status), title, oe.Description)
		return
	}
	u := *ar.GetRedirectURI()
	u.Fragment = ""
	q := u.Query()
	q.Set("error", oe.Code)
	if oe.Description != "" {
		q.Set("error_description", oe.Description)
	}
	if s := ar.GetState(); s != "" {
		q.Set("state", s)
	}
	q.Set("iss", p.cfg.Issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func statusForPage(s int) int {
	if s == http.StatusUnauthorized || s == 0 {
		return http.StatusBadRequest
	}
	return s
}

func (p *Provider) sealPending(pending *pendingAuthorization) string {
	if pending.Expires == 0 {
		pending.Expires = time.Now().Add(pendingTTL).Unix()
	}
	return p.seal.SealJSON(purposePending, pending)
}

func (p *Provider) resumeURL(pending *pendingAuthorization) string {
	return PathAuthorize + "?" + resumeParam + "=" + url.QueryEscape(p.sealPending(pending))
}

func (p *Provider) openPending(raw string) (*pendingAuthorization, error) {
	var pending pendingAuthorization
	if err := p.seal.OpenJSON(purposePending, raw, 16<<10, &pending); err != nil {
		return nil, err
	}
	if pending.Form == nil {
		return nil, errors.New("oauth: pending authorization without parameters")
	}
	return &pending, nil
}

func (pa *pendingAuthorization) expiresAt() int64 { return pa.Expires }

// duplicateParam returns a parameter sent more than once (RFC 6749 §3.1),
// in the query and the body together.
func duplicateParam(sets ...url.Values) string {
	seen := map[string]bool{}
	for _, set := range sets {
		for k, vs := range set {
			if (len(vs) > 1 || seen[k]) && !repeatable[k] {
				return k
			}
			seen[k] = true
		}
	}
	return ""
}

func cloneForm(f url.Values) url.Values {
	c := make(url.Values, len(f))
	for k, v := range f {
		c[k] = append([]string(nil), v...)
	}
	return c
}

func maxAge(form url.Values) int64 {
	n, _ := strconv.ParseInt(form.Get("max_age"), 10, 64)
	return n
}

// isS256Challenge: base64url(SHA-256) is exactly 43 characters.
func isS256Challenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newGrantSessionID returns a new grant session id (the sid claim).
func newGrantSessionID() string { return "gs_" + secret.Generate(16) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
