package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/oauthd/oauthd/storage"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// codecClients is a fake client getter for decodeRequest.
type codecClients map[string]*storage.Client

func (c codecClients) GetClient(_ context.Context, id string) (fosite.Client, error) {
	rec, ok := c[id]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return newClient(rec), nil
}

var (
	codecZone  = time.FixedZone("UTC+2", 2*3600)
	codecClock = time.Date(2024, 5, 6, 7, 8, 9, 123456789, codecZone)
	testCodecC = codecClients{"app": {ID: "app", Scope: "openid profile", TokenEndpointAuthMethod: AuthMethodBasic}}
)

// secretValues are the deny-listed form values; none may appear in the bytes.
var secretValues = map[string]string{
	"client_secret":         "SECRET-client-secret",
	"client_assertion":      "SECRET-client-assertion",
	"client_assertion_type": "SECRET-assertion-type",
	"code_verifier":         "SECRET-code-verifier",
	"code":                  "SECRET-code",
	"refresh_token":         "SECRET-refresh-token",
	"password":              "SECRET-password",
	"assertion":             "SECRET-assertion",
	"request":               "SECRET-request-jar",
	"request_uri":           "SECRET-request-uri",
	"token":                 "SECRET-token",
}

func codecSession() *Session {
	s := newSession()
	s.Subject = "user-1"
	s.Claims.Subject = "user-1"
	s.Claims.Nonce = "n-0S6"
	s.Claims.AuthTime = codecClock.Add(-time.Minute)
	s.Claims.RequestedAt = codecClock.Add(-2 * time.Minute)
	s.Claims.AuthenticationContextClassReference = "1"
	s.Claims.Add("sid", "sess-1")
	s.ClientID = "app"
	s.SessionID = "sess-1"
	s.SetExpiresAt(fosite.AccessToken, codecClock.Add(time.Hour))
	s.SetExpiresAt(fosite.RefreshToken, codecClock.Add(24*time.Hour))
	return s
}

func codecForm(extra url.Values) url.Values {
	f := url.Values{"scope": {"openid profile"}, "client_id": {"app"}, "nonce": {"n-0S6"}}
	for k, v := range extra {
		f[k] = v
	}
	for k, v := range secretValues {
		f.Set(k, v)
	}
	f.Set("Client_Secret", "SECRET-mixed-case")
	return f
}

func codecTokenRequest() *fosite.Request {
	r := fosite.NewRequest()
	r.ID = "req-1"
	r.RequestedAt = codecClock
	r.Client = newClient(testCodecC["app"])
	r.RequestedScope = fosite.Arguments{"openid", "profile"}
	r.GrantedScope = fosite.Arguments{"openid"}
	r.RequestedAudience = fosite.Arguments{"https://api.example"}
	r.GrantedAudience = fosite.Arguments{"https://api.example"}
	r.Form = codecForm(url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {"https://app.example/cb"}})
	r.Session = codecSession()
	return r
}

func codecAuthorizeRequest() *fosite.AuthorizeRequest {
	ar := fosite.NewAuthorizeRequest()
	ar.Request = *codecTokenRequest()
	ar.ID = "par-1"
	ar.Form = codecForm(url.Values{"response_type": {"code"}, "state": {"xyz"}, "code_challenge": {"abc"}, "code_challenge_method": {"S256"}})
	ar.RedirectURI, _ = url.Parse("https://app.example/cb?x=1")
	ar.ResponseTypes = fosite.Arguments{"code"}
	ar.State = "xyz"
	ar.ResponseMode = fosite.ResponseModeFormPost
	ar.DefaultResponseMode = fosite.ResponseModeQuery
	ar.HandledResponseTypes = fosite.Arguments{"code"}
	return ar
}

func TestRequestCodecRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  fosite.Requester
	}{
		{"token request", codecTokenRequest()},
		{"authorize request", codecAuthorizeRequest()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := encodeRequest(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range secretValues {
				if bytes.Contains(data, []byte(v)) {
					t.Errorf("encoded bytes contain %s value", k)
				}
			}
			if bytes.Contains(data, []byte("SECRET")) {
				t.Errorf("encoded bytes contain a secret: %s", data)
			}
			if tc.req.GetRequestForm().Get("client_secret") == "" {
				t.Error("encodeRequest mutated the caller's form")
			}

			got, err := decodeRequest(context.Background(), data, testCodecC)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.req
			if got.GetID() != want.GetID() {
				t.Errorf("ID = %q, want %q", got.GetID(), want.GetID())
			}
			if !got.GetRequestedAt().Equal(want.GetRequestedAt()) || got.GetRequestedAt().Location() != time.UTC {
				t.Errorf("RequestedAt = %v, want %v in UTC", got.GetRequestedAt(), want.GetRequestedAt())
			}
			if got.GetClient().GetID() != "app" {
				t.Errorf("client = %q", got.GetClient().GetID())
			}
			if _, ok := got.GetClient().(*client); !ok {
				t.Errorf("client type %T, want *client", got.GetClient())
			}
			for _, p := range []struct {
				name      string
				got, want fosite.Arguments
			}{
				{"requested scopes", got.GetRequestedScopes(), want.GetRequestedScopes()},
				{"granted scopes", got.GetGrantedScopes(), want.GetGrantedScopes()},
				{"requested audience", got.GetRequestedAudience(), want.GetRequestedAudience()},
				{"granted audience", got.GetGrantedAudience(), want.GetGrantedAudience()},
			} {
				if !reflect.DeepEqual(p.got, p.want) {
					t.Errorf("%s = %v, want %v", p.name, p.got, p.want)
				}
			}
			wantForm := url.Values{}
			for k, v := range want.GetRequestForm() {
				if !formDenyList[strings.ToLower(k)] {
					wantForm[k] = v
				}
			}
			if !reflect.DeepEqual(got.GetRequestForm(), wantForm) {
				t.Errorf("form = %v, want %v", got.GetRequestForm(), wantForm)
			}

			gs, ok := got.GetSession().(*Session)
			if !ok {
				t.Fatalf("session type %T", got.GetSession())
			}
			ws := want.GetSession().(*Session)
			if gs == ws || gs.DefaultSession == ws.DefaultSession || gs.Claims == ws.Claims {
				t.Error("session shares pointers with the original")
			}
			if gs.Subject != ws.Subject || gs.Claims.Subject != ws.Claims.Subject || gs.ClientID != ws.ClientID || gs.SessionID != ws.SessionID {
				t.Errorf("session = %+v / %+v", gs, gs.DefaultSession)
			}
			if gs.Claims.Nonce != "n-0S6" || gs.Claims.AuthenticationContextClassReference != "1" || gs.Claims.Extra["sid"] != "sess-1" {
				t.Errorf("claims = %+v", gs.Claims)
			}
			if !gs.Claims.AuthTime.Equal(ws.Claims.AuthTime) || !gs.Claims.RequestedAt.Equal(ws.Claims.RequestedAt) {
				t.Errorf("claim times = %v / %v", gs.Claims.AuthTime, gs.Claims.RequestedAt)
			}
			if len(gs.ExpiresAt) != len(ws.ExpiresAt) {
				t.Errorf("ExpiresAt = %v, want %v", gs.ExpiresAt, ws.ExpiresAt)
			}
			for k, w := range ws.ExpiresAt {
				g := gs.GetExpiresAt(k)
				if !g.Equal(w) || g.Location() != time.UTC {
					t.Errorf("ExpiresAt[%s] = %v, want %v in UTC", k, g, w)
				}
			}

			wa, isAuth := want.(fosite.AuthorizeRequester)
			ga, gotAuth := got.(*fosite.AuthorizeRequest)
			if isAuth != gotAuth {
				t.Fatalf("decoded %T for %T", got, want)
			}
			if !isAuth {
				if _, ok := got.(*fosite.Request); !ok {
					t.Errorf("decoded %T, want *fosite.Request", got)
				}
				return
			}
			if ga.RedirectURI == nil || ga.RedirectURI.String() != wa.GetRedirectURI().String() {
				t.Errorf("RedirectURI = %v, want %v", ga.RedirectURI, wa.GetRedirectURI())
			}
			if !reflect.DeepEqual(ga.ResponseTypes, wa.GetResponseTypes()) || ga.State != wa.GetState() ||
				ga.ResponseMode != wa.GetResponseMode() || ga.DefaultResponseMode != wa.GetDefaultResponseMode() {
				t.Errorf("authorize fields = %+v", ga)
			}
			if len(ga.HandledResponseTypes) != 0 {
				t.Errorf("HandledResponseTypes = %v, want empty", ga.HandledResponseTypes)
			}
		})
	}
}

// otherSession is a fosite.Session that is not our *Session.
type otherSession struct{ *openid.DefaultSession }

func TestRequestCodecErrors(t *testing.T) {
	t.Run("non-Session session refused", func(t *testing.T) {
		for _, s := range []fosite.Session{&otherSession{openid.NewDefaultSession()}, openid.NewDefaultSession(), nil, (*Session)(nil)} {
			r := codecTokenRequest()
			r.Session = s
			if _, err := encodeRequest(r); err == nil {
				t.Errorf("session %T: no error", s)
			}
		}
	})

	valid, err := encodeRequest(codecTokenRequest())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(valid, &m); err != nil {
		t.Fatal(err)
	}
	withField := func(k, v string) []byte {
		c := map[string]json.RawMessage{}
		for kk, vv := range m {
			c[kk] = vv
		}
		c[k] = json.RawMessage(v)
		b, _ := json.Marshal(c)
		return b
	}

	for _, tc := range []struct {
		name    string
		data    []byte
		clients requestClients
		is      error
	}{
		{"deleted client", valid, codecClients{}, fosite.ErrNotFound},
		{"corrupt JSON", valid[:len(valid)/2], testCodecC, nil},
		{"not JSON", []byte("garbage"), testCodecC, nil},
		{"unknown version", withField("v", "2"), testCodecC, nil},
		{"missing version", withField("v", "0"), testCodecC, nil},
		{"corrupt session", withField("session", `"x"`), testCodecC, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeRequest(context.Background(), tc.data, tc.clients)
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

func TestRequestCodecGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		req  fosite.Requester
	}{
		{"request.golden.json", codecAuthorizeRequest()},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := encodeRequest(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, data, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("encoding changed; if deliberate, bump requestCodecVersion as needed and run with -update.\ngot:\n%s\nwant:\n%s", pretty.Bytes(), want)
			}
			// The golden bytes must still decode.
			if _, err := decodeRequest(context.Background(), want, testCodecC); err != nil {
				t.Errorf("golden does not decode: %v", err)
			}
		})
	}
}

// BenchmarkRequestCodec measures what every code exchange and refresh pays
// to store and rebuild a request.
func BenchmarkRequestCodec(b *testing.B) {
	req := codecTokenRequest()
	data, err := encodeRequest(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeRequest(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeRequest(context.Background(), data, testCodecC); err != nil {
				b.Fatal(err)
			}
		}
	})
}
