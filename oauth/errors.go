package oauth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/oauthd/oauthd/internal/httpx"
)

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

var (
	errTooLarge               = &oauthError{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: "The request body is too large."}
	errTemporarilyUnavailable = &oauthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Description: "The authorization server is temporarily unable to handle the request. Try again later."}
)

func invalidRequest(desc string) *oauthError {
	return &oauthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc}
}

// toOAuthError maps any error from fosite or our own checks to the answer a
// client sees. Storage failures become 503 temporarily_unavailable whatever
// fosite wrapped them in (it reports a failed client lookup as
// invalid_client). Internal details never leave: fosite's debug field is not
// exposed, and unknown errors become a bare server_error.
func toOAuthError(err error) *oauthError {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe
	}
	var cu *codeUsedError
	if errors.As(err, &cu) {
		return errCodeUsed
	}
	if errors.Is(err, errUnavailable) {
		return errTemporarilyUnavailable
	}
	rfc := fosite.ErrorToRFC6749Error(err).WithExposeDebug(false)
	status := rfc.CodeField
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 && rfc.ErrorField != "temporarily_unavailable" {
		return &oauthError{Status: http.StatusInternalServerError, Code: "server_error",
			Description: "The authorization server encountered an unexpected condition."}
	}
	code := rfc.ErrorField
	if code == "" || strings.ContainsAny(code, " \"\\") {
		code = "invalid_request"
	}
	if code == "invalid_state" {
		// fosite's own code for a short state; not a registered error
		// (RFC 6749 §4.1.2.1).
		return &oauthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: "state must be at least 8 characters."}
	}
	if code == "invalid_client" {
		// fosite's hints differ between an unknown client and a known one
		// using the wrong method, which would tell whether a client_id exists.
		return &oauthError{Status: http.StatusUnauthorized, Code: code, Description: "Client authentication failed."}
	}
	return &oauthError{Status: status, Code: code, Description: sanitizeDescription(rfc.GetDescription())}
}

// sanitizeDescription keeps error_description within the characters RFC 6749
// §5.2 allows (%x20-21 / %x23-5B / %x5D-7E).
func sanitizeDescription(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteByte('\'')
		case c == '\\':
			b.WriteByte('/')
		case c >= 0x20 && c <= 0x7e:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// writeError writes an OAuth error JSON answer. A 401 carries
// WWW-Authenticate (RFC 6749 §5.2: required when the client tried the
// Authorization header; sent always so every client learns the scheme).
func (p *Provider) writeError(w http.ResponseWriter, r *http.Request, err error) {
	oe := toOAuthError(err)
	if oe.Status >= 500 {
		p.logger.ErrorContext(r.Context(), "request failed", "route", r.URL.Path, "err", err)
	} else {
		p.logger.DebugContext(r.Context(), "request refused", "error", oe.Code, "description", oe.Description)
	}
	httpx.NoStore(w)
	if oe.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauthd", error="`+oe.Code+`"`)
	}
	if oe.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	httpx.WriteJSON(w, oe.Status, oe)
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }
