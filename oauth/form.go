package oauth

import (
	"mime"
	"net/http"
	"net/url"

	"github.com/oauthd/oauthd/internal/httpx"
)

// repeatable lists the parameters that may legitimately appear more than
// once: audience (fosite accepts it repeated) and resource (RFC 8707 §2).
var repeatable = map[string]bool{"audience": true, "resource": true}

// parsePostForm reads an application/x-www-form-urlencoded body (RFC 6749
// §3.2) and applies the rules fosite leaves to us: a body over the limit is
// 413, another content type is refused (fosite would also take multipart),
// and a parameter sent twice is invalid_request (RFC 6749 §3.1/§3.2 "MUST
// NOT be included more than once"; fosite silently takes the first).
func parsePostForm(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return invalidRequest("The request body must be application/x-www-form-urlencoded.")
	}
	if cs, ok := params["charset"]; ok && cs != "utf-8" && cs != "UTF-8" {
		return invalidRequest("The request body must be UTF-8.")
	}
	if err := r.ParseForm(); err != nil {
		if httpx.IsTooLarge(err) {
			return errTooLarge
		}
		return invalidRequest("The request body is not a valid form.")
	}
	return checkDuplicates(r.PostForm)
}

func checkDuplicates(form url.Values) error {
	for k, vs := range form {
		if len(vs) > 1 && !repeatable[k] {
			return invalidRequest("The request parameter '" + sanitizeDescription(k) + "' was sent more than once.")
		}
	}
	return nil
}

// checkSingleAuthMethod enforces RFC 6749 §2.3: a client uses one
// authentication method per request. fosite would prefer the Authorization
// header and ignore body credentials.
func checkSingleAuthMethod(r *http.Request) error {
	user, _, basic := r.BasicAuth()
	if !basic {
		return nil
	}
	if r.PostForm.Has("client_secret") || r.PostForm.Has("client_assertion") {
		return invalidRequest("The client used more than one authentication method.")
	}
	if id := r.PostForm.Get("client_id"); id != "" {
		if decoded, err := url.QueryUnescape(user); err != nil || decoded != id {
			return invalidRequest("The client_id in the body differs from the one in the Authorization header.")
		}
	}
	return nil
}
