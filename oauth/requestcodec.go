package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	// Three times faster than encoding/json at the stored request every
	// exchange and refresh decodes (BenchmarkRequestCodec); same format.
	json "github.com/goccy/go-json"
	"github.com/ory/fosite"
)

// requestCodecVersion is the format version written by encodeRequest. Bump it
// (and teach decodeRequest the old one) on any incompatible format change;
// the golden test pins the current format.
const requestCodecVersion = 1

// formDenyList holds the form keys that carry a credential and are never
// persisted (fosite guide §4). fosite whitelists the code/AT/RT/PKCE/OIDC
// writes, but PAR and our own pending-authorize writes are unsanitized.
var formDenyList = map[string]bool{
	"client_secret":         true,
	"client_assertion":      true,
	"client_assertion_type": true,
	"code_verifier":         true,
	"code":                  true,
	"refresh_token":         true,
	"password":              true,
	"assertion":             true,
	"request":               true,
	"request_uri":           true,
	"token":                 true,
}

// storedRequest is the persisted form of a fosite.Requester.
type storedRequest struct {
	V                 int             `json:"v"`
	ID                string          `json:"id"`
	RequestedAt       time.Time       `json:"requested_at"`
	ClientID          string          `json:"client_id"`
	RequestedScopes   []string        `json:"requested_scopes"`
	GrantedScopes     []string        `json:"granted_scopes"`
	RequestedAudience []string        `json:"requested_audience"`
	GrantedAudience   []string        `json:"granted_audience"`
	Form              url.Values      `json:"form"`
	Session           json.RawMessage `json:"session"`
	// Authorize is set only for fosite.AuthorizeRequesters (PAR, pending
	// authorize requests); its presence selects *fosite.AuthorizeRequest on
	// decode.
	Authorize *storedAuthorize `json:"authorize,omitempty"`
}

type storedAuthorize struct {
	RedirectURI         string   `json:"redirect_uri"`
	ResponseTypes       []string `json:"response_types"`
	State               string   `json:"state"`
	ResponseMode        string   `json:"response_mode"`
	DefaultResponseMode string   `json:"default_response_mode"`
}

// requestClients is the client lookup decodeRequest needs (fositeStore).
type requestClients interface {
	GetClient(ctx context.Context, id string) (fosite.Client, error)
}

// encodeRequest serializes r for storage (the RequestData of codes, PKCE,
// OIDC, PAR and refresh-token rows, written by the sign-in storage adapter).
// The form is copied and stripped of every deny-listed key; only *Session
// sessions are accepted.
func encodeRequest(r fosite.Requester) ([]byte, error) {
	if r == nil {
		return nil, errors.New("oauth: encode request: nil request")
	}
	c := r.GetClient()
	if c == nil {
		return nil, errors.New("oauth: encode request: request has no client")
	}
	sess, ok := r.GetSession().(*Session)
	if !ok || sess == nil || sess.DefaultSession == nil {
		return nil, fmt.Errorf("oauth: encode request: unsupported session type %T", r.GetSession())
	}
	sessJSON, err := json.Marshal(sess)
	if err != nil {
		return nil, fmt.Errorf("oauth: encode request: session: %w", err)
	}
	s := storedRequest{
		V:                 requestCodecVersion,
		ID:                r.GetID(),
		RequestedAt:       r.GetRequestedAt().UTC(),
		ClientID:          c.GetID(),
		RequestedScopes:   nonNil(r.GetRequestedScopes()),
		GrantedScopes:     nonNil(r.GetGrantedScopes()),
		RequestedAudience: nonNil(r.GetRequestedAudience()),
		GrantedAudience:   nonNil(r.GetGrantedAudience()),
		Form:              sanitizeForm(r.GetRequestForm()),
		Session:           sessJSON,
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		a := &storedAuthorize{
			ResponseTypes:       nonNil(ar.GetResponseTypes()),
			State:               ar.GetState(),
			ResponseMode:        string(ar.GetResponseMode()),
			DefaultResponseMode: string(ar.GetDefaultResponseMode()),
		}
		if u := ar.GetRedirectURI(); u != nil {
			a.RedirectURI = u.String()
		}
		s.Authorize = a
	}
	return json.Marshal(&s)
}

// decodeRequest rebuilds a request written by encodeRequest: a
// *fosite.AuthorizeRequest when authorize fields were stored, else a
// *fosite.Request. The client is reloaded through clients (a deleted client
// fails the decode with the lookup's error) and the session is unmarshalled
// into a fresh *Session.
func decodeRequest(ctx context.Context, data []byte, clients requestClients) (fosite.Requester, error) {
	var s storedRequest
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("oauth: decode request: %w", err)
	}
	if s.V != requestCodecVersion {
		return nil, fmt.Errorf("oauth: decode request: unknown version %d", s.V)
	}
	sess := newSession()
	if len(s.Session) == 0 {
		return nil, errors.New("oauth: decode request: missing session")
	}
	if err := json.Unmarshal(s.Session, sess); err != nil {
		return nil, fmt.Errorf("oauth: decode request: session: %w", err)
	}
	if sess.DefaultSession == nil {
		return nil, errors.New("oauth: decode request: empty session")
	}
	for k, t := range sess.ExpiresAt {
		sess.ExpiresAt[k] = t.UTC()
	}
	if cl := sess.Claims; cl != nil {
		cl.ExpiresAt, cl.IssuedAt = cl.ExpiresAt.UTC(), cl.IssuedAt.UTC()
		cl.RequestedAt, cl.AuthTime = cl.RequestedAt.UTC(), cl.AuthTime.UTC()
	}

	c, err := clients.GetClient(ctx, s.ClientID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("oauth: decode request: client %q: %w", s.ClientID, fosite.ErrNotFound)
	}

	req := fosite.NewRequest()
	req.ID = s.ID
	req.RequestedAt = s.RequestedAt.UTC()
	req.Client = c
	req.RequestedScope = fosite.Arguments(nonNil(s.RequestedScopes))
	req.GrantedScope = fosite.Arguments(nonNil(s.GrantedScopes))
	req.RequestedAudience = fosite.Arguments(nonNil(s.RequestedAudience))
	req.GrantedAudience = fosite.Arguments(nonNil(s.GrantedAudience))
	if s.Form != nil {
		req.Form = s.Form
	}
	req.Session = sess

	if s.Authorize == nil {
		return req, nil
	}
	ar := fosite.NewAuthorizeRequest()
	ar.Request = *req
	ar.ResponseTypes = fosite.Arguments(nonNil(s.Authorize.ResponseTypes))
	ar.State = s.Authorize.State
	ar.ResponseMode = fosite.ResponseModeType(s.Authorize.ResponseMode)
	ar.DefaultResponseMode = fosite.ResponseModeType(s.Authorize.DefaultResponseMode)
	if s.Authorize.RedirectURI != "" {
		u, err := url.Parse(s.Authorize.RedirectURI)
		if err != nil {
			return nil, fmt.Errorf("oauth: decode request: redirect_uri: %w", err)
		}
		ar.RedirectURI = u
	}
	// HandledResponseTypes stays empty: it is per-response state.
	return ar, nil
}

// sanitizeForm returns a copy of f without deny-listed keys (matched
// case-insensitively, so a differently-cased credential is dropped too).
func sanitizeForm(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		if formDenyList[strings.ToLower(k)] {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

func nonNil(a []string) []string {
	if a == nil {
		return []string{}
	}
	return append([]string{}, a...)
}
